"""``recsys-eval`` evaluates a checkpoint only on the data it was trained on: the same ids are
not enough, the split's contents must match its fingerprint."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import compose_config, one_line, run_main

from recsys.data.datamodule import RecsysDataModule
from recsys.runs.fit import train

pytestmark = pytest.mark.slow  # a training and console scripts


def write_log(path, seed: int = 0) -> pd.DataFrame:
    """An event log of 80 readers and 40 articles, 12-20 views each, as CSV."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(80):
        for k in range(rng.integers(12, 21)):
            rows.append((f"u{u}", f"a{(u * 7 + rng.integers(0, 15)) % 40}", 1000 * u + 60 * k))
    log = pd.DataFrame(rows, columns=["reader", "article", "t"])
    log.to_csv(path, index=False)
    return log


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained ALS on the log: (folder, log path, config overrides)."""
    root = tmp_path_factory.mktemp("same_data")
    log_path = root / "log.csv"
    write_log(log_path)
    data = [
        "data=events",
        f"data.path={log_path}",
        "data.columns.user=reader",
        "data.columns.item=article",
        "data.columns.timestamp=t",
    ]
    out = root / "run"
    cfg = compose_config(
        "train", [*data, "trainer.max_epochs=3", "trainer.enable_progress_bar=false"], out
    )
    train(cfg)
    return out, log_path, cfg


def test_unchanged_data_reproduces_the_metrics_exactly(run, tmp_path, monkeypatch, capsys):
    out, _, _ = run
    monkeypatch.chdir(tmp_path)
    best = next((out / "checkpoints").glob("epoch_*.ckpt"))  # the one the run tested
    code, err, _ = run_main("recsys-eval", [f"ckpt_path={best}", f"hydra.run.dir={tmp_path}"],
                            capsys)  # fmt: skip
    assert code == 0, err[-3000:]
    trained = json.loads((out / "metrics.json").read_text())
    test_part = {k: v for k, v in trained.items() if k.startswith("test/")}
    assert json.loads((tmp_path / "metrics.json").read_text()) == test_part  # exactly


def test_two_percent_of_the_training_pairs_removed_is_refused(run, tmp_path, monkeypatch, capsys):
    out, log_path, cfg = run
    dm = RecsysDataModule.from_config(cfg)
    train_part = dm.split.train.matrix.tocoo()
    log = pd.read_csv(log_path)
    users, items = dm.user_ids[train_part.row], dm.item_ids[train_part.col]
    rng = np.random.default_rng(1)
    drop = rng.choice(len(users), size=int(0.02 * len(users)), replace=False)
    pairs = set(zip(users[drop], items[drop]))
    kept = log[[(u, i) not in pairs for u, i in zip(log["reader"], log["article"])]]
    assert len(kept) < len(log)
    assert set(kept["reader"]) == set(log["reader"]) and set(kept["article"]) == set(log["article"])
    kept.to_csv(log_path, index=False)
    try:
        monkeypatch.chdir(tmp_path)
        ckpt = out / "checkpoints" / "last.ckpt"
        args = [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path}"]
        line = one_line(*run_main("recsys-eval", args, capsys)[:2])
        assert "differs from what" in line and "with the same ids" in line
        assert "train part" in line
        assert not (tmp_path / "metrics.json").exists()
    finally:
        log.to_csv(log_path, index=False)
