"""A resumed sweep ends the trials of a process that died, whenever it died: mid-trial (its
process is named and gone) or before it could name itself (no process, no heartbeat)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import optuna
from optuna.trial import FrozenTrial, TrialState

from recsys.runs.trials import PROCESS_ATTR, fail_dead_trials, this_process


def running_trial(study: optuna.Study, age_s: float, user_attrs: dict) -> int:
    template = FrozenTrial(
        number=-1, state=TrialState.RUNNING, value=None,
        datetime_start=datetime.now() - timedelta(seconds=age_s), datetime_complete=None,
        params={}, distributions={}, user_attrs=user_attrs, system_attrs={},
        intermediate_values={}, trial_id=-1,
    )  # fmt: skip
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def dead_process() -> dict:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {**this_process(), "pid": proc.pid, "start": "0"}


def state(study, trial_id):
    return study._storage.get_trial(trial_id).state


def test_dead_alive_and_unnamed_trials_are_told_apart():
    study = optuna.create_study()
    alive = running_trial(study, 60, {PROCESS_ATTR: this_process()})
    dead = running_trial(study, 60, {PROCESS_ATTR: dead_process()})
    unnamed_old = running_trial(study, 60, {})
    failed = fail_dead_trials(study, claim_seconds=5)
    assert state(study, alive) == TrialState.RUNNING
    assert state(study, dead) == TrialState.FAIL
    assert state(study, unnamed_old) == TrialState.FAIL
    assert sorted(failed) == [1, 2]
    waiting = study.get_trials(states=(TrialState.WAITING,))  # the named one, queued again
    assert len(waiting) == 1


def test_an_unnamed_trial_younger_than_the_claim_time_is_waited_for():
    study = optuna.create_study()
    young = running_trial(study, 0, {})
    started = datetime.now()
    assert fail_dead_trials(study, claim_seconds=1.0) == [0]
    assert (datetime.now() - started).total_seconds() >= 0.9
    assert state(study, young) == TrialState.FAIL
    assert study.get_trials(states=(TrialState.WAITING,)) == []
