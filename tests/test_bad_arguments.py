"""Every console script on a table of bad arguments: exit status 2, no traceback, the offending
name in the message. Run in process (``helpers.run_main``: the scripts' own ``main``), which is
what their console entry points call; ``tests/test_cli.py`` runs a few as real processes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers import SMALL_DATA, compose_config, run_main

from recsys.runs.fit import train as train_run


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A trained checkpoint, a text file, two runs on different data, a truncated parquet."""
    root = tmp_path_factory.mktemp("bad_args")
    runs = {}
    for name, seed in (("a", 1), ("b", 2)):
        cfg = compose_config("train", [*SMALL_DATA, f"seed={seed}", "trainer.max_epochs=1",
                                       "logger=[]"], root / name)  # fmt: skip
        train_run(cfg)
        runs[name] = root / name
    (root / "notes.txt").write_text("not a checkpoint\n")
    truncated = root / "truncated"
    truncated.mkdir()
    data = (runs["a"] / "per_user_metrics.parquet").read_bytes()
    (truncated / "per_user_metrics.parquet").write_bytes(data[: len(data) // 2])
    return {
        "ckpt": str(runs["a"] / "checkpoints" / "last.ckpt"),
        "text": str(root / "notes.txt"),
        "a": str(runs["a"]),
        "b": str(runs["b"]),
        "truncated": str(truncated),
    }


BAD = [  # (script, arguments, what the one line must name); {x} is filled from ``made``
    ("recsys-train", ["model=nope"], "model/nope"),
    ("recsys-train", ["trainer.max_epoch=3"], "max_epoch"),
    ("recsys-train", ["+model.factor=3"], "factor"),
    ("recsys-train", ["model.solver=qr"], "model.solver"),
    ("recsys-train", ["seed=abc"], "seed"),
    ("recsys-train", ["model=bpr", "model.lr=-1"], "model.lr"),
    ("recsys-train", ["eval_batch_size=0"], "eval_batch_size"),
    ("recsys-train", ["trainer.max_epochs=0"], "trainer.max_epochs"),
    ("recsys-train", ["evaluator.ks=[10]"], "optimized_metric"),
    ("recsys-train", ["data.n_users=abc"], "config data"),
    ("recsys-train", ["data.path"], "data.path"),
    ("recsys-train", ["hydra.run.dir=/proc/no/such/dir"], "/proc/no"),
    ("recsys-eval", [], "ckpt_path"),
    ("recsys-eval", ["ckpt_path=nope.ckpt"], "nope.ckpt"),
    ("recsys-eval", ["ckpt_path={text}"], "notes.txt"),
    ("recsys-eval", ["ckpt_path={ckpt}", "evaluator=nope"], "evaluator/nope"),
    ("recsys-recommend", ["users=[1]"], "ckpt_path"),
    ("recsys-recommend", ["ckpt_path={ckpt}"], "users="),
    ("recsys-recommend", ["ckpt_path={ckpt}", "users=[1]", "k=0"], "k must be"),
    ("recsys-recommend", ["ckpt_path={ckpt}", "users=[999999]"], "999999"),
    ("recsys-recommend", ["ckpt_path={ckpt}", "history=[3,123456]"], "unknown item id(s) 123456"),
    ("recsys-recommend", ["ckpt_path={ckpt}", "history=[1]", "features=5"], "features"),
    ("recsys-recommend", ["ckpt_path={ckpt}", "history=[1,2]", "strengths=[1]"], "strengths"),
    (
        "recsys-recommend",
        ["ckpt_path={ckpt}", "users=[1]", "output=/proc/no/x.jsonl"],
        "/proc/no/x.jsonl",
    ),  # fmt: skip
    ("recsys-replay", ["ckpt_path={ckpt}"], "event log"),
    ("recsys-replay", ["ckpt_path={ckpt}", "k=0"], "k must be"),
    ("recsys-sweep", [], "hparams_search"),
    ("recsys-sweep", ["hparams_search=nope"], "hparams_search/nope"),
    ("recsys-sweep", ["--config-dir", "no_such_folder", "hparams_search=x"], "no_such_folder"),
    ("recsys-sweep", ["hparams_search=synthetic_als", "n_jobs=0"], "n_jobs"),
    ("recsys-compare", ["no_such_run"], "no_such_run"),
    ("recsys-compare", ["{truncated}", "{a}"], "per_user_metrics.parquet"),
    ("recsys-compare", ["{a}", "{b}"], "--allow-different-data"),
    ("recsys-compare", ["{a}", "{a}", "--history", "abc"], "--history"),
    ("recsys-compare", ["{a}", "--baseline", "zzz"], "--baseline"),
    ("recsys-compare", ["{a}", "--nope"], "--nope"),
    ("recsys-data", ["download", "nope"], "nope"),
    ("recsys-data", ["fetch"], "fetch"),
]


@pytest.mark.parametrize("script, args, name", BAD, ids=[f"{s} {' '.join(a)}" for s, a, _ in BAD])
def test_bad_arguments_are_one_clear_line(script, args, name, made, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    args = [a.format(**made) for a in args]
    code, err, _ = run_main(script, args, capsys)
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert name.format(**made) in err, err[-2000:]
    assert not list(Path(tmp_path).glob("logs/*/runs/*/metrics.json"))
    assert not list(Path(tmp_path).glob("logs/sweeps/*/study.db"))  # no study for a bad sweep


def test_compare_on_different_data_runs_when_told(made, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, err, _ = run_main("recsys-compare", [made["a"], made["b"], "--allow-different-data"],
                         capsys)  # fmt: skip
    assert code == 0, err
    frame = pd.read_parquet(Path(made["a"]) / "per_user_metrics.parquet")
    assert set(frame.attrs["data_fingerprint"]) >= {"train", "val", "test"}
