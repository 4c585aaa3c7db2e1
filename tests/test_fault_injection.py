"""Runs and sweeps killed (SIGKILL) at random points, several seeds: no truncated file under a
final name; a sweep resumed at once ends with exactly ``n_trials`` finished trials and no
repeated parameter point; two sweeps on one study at once draw distinct points."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time

import optuna
import pytest
from helpers import BIN, assert_no_partial_file

from recsys.runs.trials import PROCESS_ATTR

pytestmark = pytest.mark.slow  # console scripts killed and resumed

N_TRIALS = 4
SWEEP = [
    str(BIN / "recsys-sweep"),
    "hparams_search=synthetic_als",
    f"hparams_search.n_trials={N_TRIALS}",
    "hparams_search.train_overrides=['trainer.enable_progress_bar=false','data.n_users=300',"
    "'data.n_items=150','logger=[]']",
]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def kill_after(command: list[str], cwd, seconds: float, started=None) -> None:
    """Run ``command`` and SIGKILL it ``seconds`` after ``started()`` first holds (at once
    without it): a loaded machine's slow start does not eat into the time it works."""
    proc = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while started is not None and not started() and proc.poll() is None:
        assert time.time() < deadline, "the command did not start within 120 s"
        time.sleep(0.05)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def finished_count(cwd) -> int:
    """Finished trials, read without writing (opening the study through Optuna could race
    the sweep creating its tables)."""
    path = cwd / "logs" / "sweeps" / "synthetic_als" / "study.db"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            (n,) = db.execute(
                "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()
    except sqlite3.OperationalError:  # no file or tables yet, or locked for a moment
        return 0
    return n


def kill_sweep_during_a_trial(cwd, after: int, rng: random.Random) -> None:
    """Start the sweep, and SIGKILL it a random moment (0-1.5 s) after ``after`` trials in
    all have finished: most likely while the next trial trains or writes."""
    proc = subprocess.Popen(SWEEP, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while finished_count(cwd) < after and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(rng.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL  # it was still running


def study_of(cwd) -> optuna.Study:
    path = cwd / "logs" / "sweeps" / "synthetic_als" / "study.db"
    return optuna.load_study(study_name="synthetic_als", storage=f"sqlite:///{path}")


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(states=states)


def points(trials) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in trials]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_training_run_killed_anywhere_leaves_no_partial_file(seed, tmp_path):
    """Killed while it trains, checkpoints every epoch, tests or writes its outputs."""
    delay = random.Random(seed).uniform(0.0, 5.0)  # after its run folder appears
    runs = tmp_path / "logs" / "train" / "runs"
    kill_after([str(BIN / "recsys-train"), "trainer.max_epochs=40"], tmp_path, delay,
               started=lambda: runs.is_dir() and any(runs.iterdir()))  # fmt: skip
    assert list(runs.iterdir())  # it had started
    assert_no_partial_file(tmp_path)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_sweep_killed_twice_and_resumed_at_once_finishes_exactly(seed, tmp_path):
    rng = random.Random(seed)
    kill_sweep_during_a_trial(tmp_path, 1, rng)
    kill_sweep_during_a_trial(tmp_path, 2, rng)
    # no waiting for the heartbeat's grace period: dead trials are recognised by their process
    again = subprocess.run(SWEEP, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    study = study_of(tmp_path)
    done = finished(study)
    assert len(done) == N_TRIALS
    assert len(set(points(done))) == N_TRIALS  # no point evaluated twice
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert running == []
    for t in study.get_trials(states=(optuna.trial.TrialState.FAIL,)):  # killed mid-trial:
        assert t.user_attrs[PROCESS_ATTR]["pid"] != os.getpid()
    assert_no_partial_file(tmp_path / "logs")


def test_two_sweeps_at_once_on_one_study_draw_distinct_points(tmp_path):
    n = 8
    sweep = [*SWEEP[:2], f"hparams_search.n_trials={n}", *SWEEP[3:]]
    first = subprocess.Popen(sweep, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while not started(tmp_path) and first.poll() is None and time.time() < deadline:
        time.sleep(0.1)  # the first has created the study and started a trial
    second = subprocess.run(sweep, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert first.wait(timeout=600) == 0, first.stderr.read()[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    done = finished(study_of(tmp_path))
    assert n <= len(done) <= n + 1  # each stops once finished + running trials reach n
    pids = {t.user_attrs[PROCESS_ATTR]["pid"] for t in done}
    assert len(pids) == 2  # both took trials
    assert len(set(points(done))) == len(done)


def started(cwd) -> bool:
    """Whether the study has a trial yet (read-only, as ``finished_count``)."""
    path = cwd / "logs" / "sweeps" / "synthetic_als" / "study.db"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False
