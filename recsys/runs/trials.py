"""What keeps a sweep honest across processes: a sampler seeded per trial, and trials whose
process died recognised at once."""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections.abc import Sequence
from datetime import datetime

import hydra
import optuna
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)
PROCESS_ATTR = "process"  # the user attribute naming the process that runs a trial


class TrialSeededSampler(BaseSampler):
    """The configured sampler (``config``: its ``_target_`` and arguments), built afresh for
    each trial with seed = the config's ``seed`` + the trial's number.

    A sampler seeded once per process restarts its random stream in every process: a resumed,
    extended or second concurrent sweep drew the points it had drawn before. Trial numbers are
    unique in a study, so here every trial has its own stream, and trial n of a sweep is drawn
    alike whenever the history before it is alike. Without a ``seed`` each trial's sampler is
    seeded at random.

    It also records, as soon as a trial exists (``before_trial``, before any sampling), the
    process that runs it (``PROCESS_ATTR``), so that a resume can tell a dead trial at once."""

    def __init__(self, config: dict) -> None:
        self._config = dict(config)
        self._seed = self._config.pop("seed", None)
        self._by_trial: dict[int, BaseSampler] = {}

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        n = trial.number
        if n not in self._by_trial:
            seeded = {} if self._seed is None else {"seed": int(self._seed) + n}
            self._by_trial[n] = hydra.utils.instantiate({**self._config, **seeded})
        return self._by_trial[n]

    def infer_relative_search_space(self, study, trial):
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        study._storage.set_trial_user_attr(trial._trial_id, PROCESS_ATTR, this_process())
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values: Sequence[float] | None) -> None:
        self._for(trial).after_trial(study, trial, state, values)
        self._by_trial.pop(trial.number, None)

    def reseed_rng(self) -> None:  # the seeds follow the trial numbers
        pass


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux: /proc/<pid>/stat), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict:
    """Host, pid and start time of this process (the pid alone can be reused)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid)}


def _alive(process: dict) -> bool:
    try:
        os.kill(int(process["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process of that pid
        return True
    now = _start_time(int(process["pid"]))
    return process.get("start") is None or now is None or now == process["start"]


CLAIM_SECONDS = 10.0  # a live sweep names its process on a new trial within milliseconds


def _age_seconds(trial: FrozenTrial) -> float:
    start = trial.datetime_start
    return float("inf") if start is None else (datetime.now() - start).total_seconds()


def fail_dead_trials(study: optuna.Study, claim_seconds: float = CLAIM_SECONDS) -> list[int]:
    """Fail the RUNNING trials whose process (``PROCESS_ATTR``) is no longer alive on this
    host, at once rather than after the heartbeat's grace period, and queue each again with
    its parameters (once, as the heartbeat's retry would). Returns their numbers.

    A RUNNING trial that names no process was created by a sweep killed before it could name
    itself (between Optuna creating the trial and the sampler's ``before_trial``): it has no
    heartbeat either, so nothing else would ever end it. Once it is ``claim_seconds`` old
    (waiting for the rest of that time if it is younger) it is failed too; it has no
    parameters to queue again."""
    host, dead = socket.gethostname(), []
    with warnings.catch_warnings():  # "experimental" in Optuna, as the heartbeat it belongs to
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    storage = study._storage  # Optuna's own stale-trial handling works on it too
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    unnamed = [t for t in running if not t.user_attrs.get(PROCESS_ATTR)]
    if unnamed:
        time.sleep(max(0.0, claim_seconds - min(_age_seconds(t) for t in unnamed)))
        running = [storage.get_trial(t._trial_id) for t in running]
    for trial in running:
        process = trial.user_attrs.get(PROCESS_ATTR)
        if trial.state != TrialState.RUNNING:
            continue
        if not process:
            if _age_seconds(trial) >= claim_seconds and storage.set_trial_state_values(
                trial._trial_id, state=TrialState.FAIL
            ):
                dead.append(trial.number)
            continue
        if process.get("host") != host or _alive(process):
            continue
        if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            retry(study, storage.get_trial(trial._trial_id))
            dead.append(trial.number)
    if dead:
        log.info("trials %s: process gone; failed, those with parameters queued again", dead)
    return dead
