"""A user's own log from config alone: without timestamps, with event names of its own weighted
from the command line, with repeated rows reported."""

from __future__ import annotations

import hydra
import numpy as np
import pytest
from helpers import compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.errors import ConfigError, RecsysError
from recsys.runs.fit import train


def write_log(path) -> str:
    """18 readers, each a view and a share of two articles, without times; one repeated row."""
    rows = ["user,item,type"]
    for u in range(18):
        rows += [f"u{u},x{u % 5},view", f"u{u},y{u % 4},share", f"u{u},x{(u + 1) % 5},view"]
    rows.append("u0,x0,view")  # the same as the first row
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def overrides(log: str, *more: str) -> list[str]:
    return ["data=events", f"data.path={log}", "data.columns.user=user",
            "data.columns.item=item", "data.columns.event_type=type",
            "data.columns.timestamp=null", "split.val_ratio=0", "logger=[]", *more]  # fmt: skip


def test_a_log_without_timestamps_trains_and_time_needs_say_so(tmp_path):
    log = write_log(tmp_path / "log.csv")
    cfg = compose_config("train", overrides(log, "trainer.max_epochs=2"), tmp_path / "run")
    _, metrics = train(cfg)
    assert metrics["test/ndcg@20"] >= 0
    dataset = hydra.utils.instantiate(cfg.data)
    dataset.load()
    assert dataset.report.sessions is None and dataset.report.duplicate_rows == 1
    assert dataset.report.events_read == 55 and dataset.report.bounces == 0
    with pytest.raises(RecsysError, match="needs timestamps"):
        train(compose_config("train", overrides(log, "split=temporal"), tmp_path / "t"))
    with pytest.raises(ConfigError, match="model=most_recent needs item publication times"):
        train(compose_config("train", overrides(log, "model=most_recent"), tmp_path / "m"))


def test_weights_for_new_event_names_from_the_command_line(tmp_path):
    log = write_log(tmp_path / "log.csv")
    cfg = compose_config(
        "train",
        overrides(log, "confidence=event_weights", "confidence.weights={share:3,view:1}",
                  "confidence.alpha=1"),
        tmp_path / "run",
    )  # fmt: skip
    data = RecsysDataModule.from_config(cfg).training_data
    train_part, conf = data.train, data.confidence
    shares = train_part.features["type:share"]
    views = train_part.features["type:view"]
    np.testing.assert_allclose(conf.data, 1 + 3 * shares + views)  # c = 1 + alpha sum w_t n_t
    assert (shares > 0).any() and (views > 0).any()
    default = hydra.utils.instantiate(compose_config("train", ["confidence=event_weights"],
                                                     tmp_path).confidence)  # fmt: skip
    assert default.weights == {"view": 1.0, "like": 4.0, "bookmark": 6.0, "purchase": 10.0}
