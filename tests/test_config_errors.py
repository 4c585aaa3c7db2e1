"""Settings that cannot work together stop a run before its first epoch, with one line; and the
code's defaults are the shipped configs' defaults."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import hydra
import lightning as L
import pytest
from helpers import SMALL_DATA, compose_config, one_line, run_main
from omegaconf import OmegaConf

from recsys.config import CONFIG_DIR
from recsys.data.datamodule import RecsysDataModule
from recsys.data.datasets.eventlog import ITEM_DEFAULTS
from recsys.data.events import EventRules
from recsys.errors import ConfigError
from recsys.runs.fit import train

QUICK = [*SMALL_DATA, "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
MISTAKES = {
    "metric not computed": (["evaluator.ks=[10]"], "optimized_metric=val/ndcg@20 is not computed"),
    "correction without propensities": (
        ["model.correction=relmf"],
        "model.correction=relmf needs item propensities",
    ),
    "adjustment without propensities": (
        ["popularity_adjustment=1.0"],
        "popularity_adjustment=1.0 divides scores by propensities",
    ),
    "no epochs": (["trainer.max_epochs=0"], "trainer.max_epochs=0 trains nothing"),
}


class EpochCounter(L.Callback):
    """Records each training epoch that starts."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.epochs.append(trainer.current_epoch)


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_mistakes_stop_before_the_first_epoch(mistake, tmp_path):
    overrides, message = MISTAKES[mistake]
    cfg = compose_config("train", [*QUICK, *overrides], tmp_path)
    counter = EpochCounter()
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        train(cfg, callbacks=[counter])
    assert counter.epochs == []
    assert not (tmp_path / "metrics.json").exists()


def test_a_mistake_is_one_line_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err, _ = run_main("recsys-train", [*SMALL_DATA, "evaluator.ks=[10]"], capsys)
    line = one_line(code, err)
    assert "optimized_metric=val/ndcg@20 is not computed" in line
    assert "val/ndcg@10" in line  # the names it could be
    assert not list(tmp_path.glob("logs/train/runs/*/checkpoints/*.ckpt"))


def test_a_valid_optimized_metric_of_a_segment_is_accepted(tmp_path):
    cfg = compose_config("train", [*QUICK, "optimized_metric=val/ndcg@20/hist_10+"], tmp_path)
    counter = EpochCounter()
    value, _ = train(cfg, callbacks=[counter])
    assert value is not None and 0 < value <= 1
    assert counter.epochs == [0, 1]  # the counter sees epochs where there are some


def _defaults(cls) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _same(a, b) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


OPTION_FILES = sorted(
    p
    for group in ("confidence", "propensity", "split", "filter", "model", "evaluator", "data")
    for p in (Path(CONFIG_DIR) / group).glob("*.yaml")
)


@pytest.mark.parametrize("path", OPTION_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_code_defaults_equal_the_config_files(path):
    """Every value a config option sets equals its class's default, so that a model or
    component built in Python behaves as the shipped config (variants built on another option
    with ``defaults:``, and values read from other config sections, are not defaults)."""
    raw = OmegaConf.load(path)
    if "_target_" not in raw or "defaults" in raw and path.stem != "hybrid":
        pytest.skip(f"{path.name} is a variant of another option")
    cls = hydra.utils.get_class(raw._target_)
    defaults = _defaults(cls)
    values = OmegaConf.to_container(raw, resolve=False)
    if isinstance(values.get("rules"), dict) and defaults.get("rules") is None:  # EventRules'
        values.update({f"rules.{k}": v for k, v in values.pop("rules").items()})
        defaults.update({f"rules.{f.name}": f.default for f in dataclasses.fields(EventRules)})
    if isinstance(values.get("items"), dict) and defaults.get("items") is None:  # EventLog's
        values.update({f"items.{k}": v for k, v in values.pop("items").items()})
        defaults.update({f"items.{k}": v for k, v in ITEM_DEFAULTS.items()})
    differ = {
        key: (value, defaults[key])
        for key, value in values.items()
        if key in defaults
        and not (isinstance(value, str) and "${" in value)
        and not _same(value, defaults[key])
    }
    assert differ == {}, f"{path}: config value != code default: {differ}"


def test_run_level_defaults_match_train_yaml():
    train_yaml = OmegaConf.load(Path(CONFIG_DIR) / "train.yaml")
    dm = _defaults(RecsysDataModule)
    assert train_yaml.seed == dm["seed"]
    assert train_yaml.eval_batch_size == dm["eval_batch_size"]
    assert train_yaml.data_cache is True  # and RecsysDataModule.from_config's default
    source = inspect.getsource(RecsysDataModule.from_config)
    assert 'cfg.get("data_cache", True)' in source


def test_the_dwell_confidence_takes_the_logs_bounce_threshold(tmp_path):
    """One bounce threshold: the event rules' (data.rules.bounce_seconds), 10 s without one."""
    log = compose_config("train", ["data=publisher_sim", "confidence=dwell",
                                   "data.rules.bounce_seconds=25"], tmp_path)  # fmt: skip
    assert log.confidence.bounce_seconds == 25
    assert compose_config("train", ["confidence=dwell"], tmp_path).confidence.bounce_seconds == 10
    assert hydra.utils.instantiate(log.confidence).bounce_seconds == 25.0
