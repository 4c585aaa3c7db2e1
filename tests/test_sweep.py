"""recsys-sweep: an Optuna search that is killed half-way and resumed by the same command,
with every trial in TensorBoard's HParams tab."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recsys.sweep import suggest, sweep_config

BIN = Path(sys.executable).parent
N_TRIALS = 6
COMMAND = [
    str(BIN / "recsys-sweep"),
    "hparams_search=synthetic_als",
    f"hparams_search.n_trials={N_TRIALS}",
    "heartbeat_interval=1",
    "grace_period=2",
    # each trial's recsys-train overrides (quoted: they hold '=')
    "hparams_search.train_overrides=['trainer.enable_progress_bar=false','data.n_users=300',"
    "'data.n_items=150']",
]


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(states=states)


def load(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="synthetic_als", storage=f"sqlite:///{sweep_dir}/study.db")


def finished_count(sweep_dir: Path) -> int:
    """Finished trials in the study, read without writing: opening the storage through Optuna
    would create its tables, racing the sweep that is creating them."""
    import sqlite3

    path = sweep_dir / "study.db"
    if not path.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            (n,) = db.execute(
                "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()
    except sqlite3.OperationalError:  # no tables yet, or locked for a moment
        return 0
    return n


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """The sweep started, killed (SIGKILL) once two trials have finished, then the same
    command again; returns the folder and the trials finished before the kill."""
    cwd = tmp_path_factory.mktemp("sweep")
    sweep_dir = cwd / "logs" / "sweeps" / "synthetic_als"
    command = COMMAND
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    before: list[optuna.trial.FrozenTrial] = []
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if finished_count(sweep_dir) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr.read()[-3000:])
    before = finished(load(sweep_dir))
    assert 2 <= len(before) < N_TRIALS
    # resumed at once: the killed trial is recognised by its process, no grace period to wait
    again = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    return sweep_dir, before, again


@pytest.mark.slow
def test_resumed_sweep_finishes_without_repeating_trials(killed_and_resumed):
    sweep_dir, before, again = killed_and_resumed
    study = load(sweep_dir)
    after = finished(study)
    assert len(after) == N_TRIALS
    by_number = {t.number: t for t in after}
    for t in before:  # kept as they were, not run again
        assert by_number[t.number].params == t.params and by_number[t.number].value == t.value
    assert f"{len(before)} of {N_TRIALS} trials finished" in again.stderr
    started = re.findall(r"- trial \d+: [\w.]+=", again.stderr)
    assert len(started) == N_TRIALS - len(before)  # only the missing trials ran
    for t in study.get_trials(states=(optuna.trial.TrialState.FAIL,)):  # killed mid-run:
        assert any(f.params == t.params for f in after)  # run again with its parameters
    assert (sweep_dir / "trials.csv").is_file()


@pytest.mark.slow
def test_every_finished_trial_is_in_the_hparams_tab(killed_and_resumed):
    sweep_dir, _, _ = killed_and_resumed
    study = load(sweep_dir)
    seen = 0
    for t in finished(study):
        run_dir = Path(t.user_attrs["run_dir"])
        acc = EventAccumulator(str(run_dir / "tensorboard"))
        acc.Reload()
        content = acc.PluginTagToContent("hparams")
        assert "_hparams_/session_start_info" in content, run_dir
        start = content["_hparams_/session_start_info"]
        assert b"model/regularization" in start and b"max_epochs" in start
        seen += 1
    assert seen == N_TRIALS


def test_unknown_parameter_type_is_a_clear_error():
    trial = optuna.create_study().ask()
    with pytest.raises(Exception, match="float, int or categorical"):
        suggest(trial, "model.factors", {"type": "integer", "low": 1, "high": 2})


def test_sweep_needs_a_search_space():
    with pytest.raises(Exception, match="hparams_search=<name>"):
        sweep_config([])


@pytest.mark.slow
def test_parallel_workers_share_one_study(tmp_path):
    """n_jobs=2: two spawned workers take trials from the same study, each trial runs once,
    in its own complete run directory, and the workers do not propose the same points."""
    n = 6
    command = [*COMMAND[:2], f"hparams_search.n_trials={n}", "n_jobs=2", *COMMAND[3:]]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    study = load(tmp_path / "logs" / "sweeps" / "synthetic_als")
    trials = finished(study)
    assert len(trials) == n and len(study.trials) == n  # none failed, repeated or extra
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    assert len({tuple(sorted(t.params.items())) for t in trials}) == n
    for t in trials:
        run_dir = Path(t.user_attrs["run_dir"])
        assert (run_dir / ".hydra" / "config.yaml").is_file()
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert (run_dir / "metrics.json").is_file()
    assert (
        "[worker 1]" in (tmp_path / "logs" / "sweeps" / "synthetic_als" / "sweep.log").read_text()
    )


SEARCH_SPACES = sorted(
    p.stem
    for p in (Path(__file__).parents[1] / "configs" / "hparams_search").glob("*.yaml")
    if not p.stem.endswith("_base")
)


@pytest.mark.parametrize("name", SEARCH_SPACES)
def test_every_search_space_composes_into_run_configs(name, tmp_path):
    """Each search space's trials compose: its train overrides plus a value of every
    parameter set a key that exists in the run config."""
    from omegaconf import OmegaConf

    from recsys.config import compose_run_config

    search = sweep_config([f"hparams_search={name}"]).hparams_search
    trial = optuna.create_study().ask()
    params = {k: suggest(trial, k, spec) for k, spec in search.params.items()}
    overrides = [*search.train_overrides, f"optimized_metric={search.metric}"]
    cfg = compose_run_config("train", [*overrides, *(f"{k}={v}" for k, v in params.items())],
                             tmp_path)  # fmt: skip
    for key, value in params.items():
        assert OmegaConf.select(cfg, key) == value, key
    assert search.metric.startswith("val/")


@pytest.mark.slow
def test_a_diverged_trial_fails_alone_and_repeated_failures_stop_the_sweep(tmp_path, monkeypatch):
    """A diverged trial (DivergenceError, a FloatingPointError) is marked failed and the sweep
    goes on; five failures in a row stop it instead of looping."""
    import recsys.runs.fit
    from recsys.errors import DivergenceError
    from recsys.sweep import run_sweep

    monkeypatch.chdir(tmp_path)
    calls = []

    def diverging(cfg, callbacks=None, overrides=None):
        calls.append(cfg.model.regularization)
        raise DivergenceError("training diverged: train/loss is nan at epoch 0")

    monkeypatch.setattr(recsys.runs.fit, "train", diverging)
    cfg = sweep_config(["hparams_search=synthetic_als", "hparams_search.n_trials=20"])
    study = run_sweep(cfg)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL] * 5 and len(calls) == 5


@pytest.mark.slow
def test_config_dir_adds_the_users_search_spaces_and_configs(tmp_path):
    """recsys-sweep --config-dir DIR: a search space and a model config of the user's."""
    mine = tmp_path / "my_configs"
    (mine / "hparams_search").mkdir(parents=True)
    (mine / "model").mkdir()
    (mine / "model" / "tiny_als.yaml").write_text("defaults:\n  - als\nfactors: 6\n")
    (mine / "hparams_search" / "mine.yaml").write_text(
        "name: mine\n"
        "train_overrides: [model=tiny_als, data.n_users=300, data.n_items=150, 'logger=[]']\n"
        "metric: val/ndcg@20\ndirection: maximize\nn_trials: 2\n"
        "sampler: {_target_: optuna.samplers.RandomSampler, seed: 0}\n"
        "pruner: {_target_: optuna.pruners.NopPruner}\n"
        "params:\n  model.regularization: {type: float, low: 1.0, high: 10.0}\n"
    )
    command = [str(BIN / "recsys-sweep"), "--config-dir", str(mine), "hparams_search=mine"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    config = tmp_path / "logs" / "sweeps" / "mine" / "trial_001" / ".hydra" / "config.yaml"
    assert "factors: 6" in config.read_text()
    missing = subprocess.run([*command[:2], str(tmp_path / "nope"), "hparams_search=mine"],
                             cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and "no such folder" in missing.stderr
