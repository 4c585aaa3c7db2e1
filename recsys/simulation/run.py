"""``recsys-simulate``'s run: the closed-loop site of a config (``configs/simulate.yaml``):
the world, the history period under the site's block, then the A/B test of the arms; the logs
written in the export format into the run folder, and the arms compared."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from recsys.data.datasets.publisher_sim import PublisherSimulator
from recsys.errors import ConfigError
from recsys.files import write_text
from recsys.simulation.loop import HISTORY_ARM, ClosedLoop, Response
from recsys.simulation.policies import (
    MostPopular,
    MostRecent,
    Oracle,
    Policy,
    RandomRecent,
    TrainedBlock,
)
from recsys.simulation.training import TrainOnLogs

log = logging.getLogger(__name__)
KINDS = ("most_recent", "most_popular", "random", "oracle", "model")
ARM_KEYS = {"policy", "pool", "fresh_days", "checkpoint", "train", "retrain_days",
            "context_weight"}  # fmt: skip


def simulate(cfg: DictConfig) -> dict:
    """Run the config's site; write ``logs/`` and ``simulate.json`` into the run folder and
    return the summary (per arm and the differences to ``control``)."""
    out = Path(cfg.paths.output_dir)
    world = OmegaConf.to_container(cfg.world, resolve=True)
    try:
        sim = PublisherSimulator(**world)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"world: {e}") from None
    response = Response(**OmegaConf.to_container(cfg.response, resolve=True))
    arms_cfg = OmegaConf.to_container(cfg.arms, resolve=True)
    if not arms_cfg:
        raise ConfigError("arms: give at least one, e.g. arms={most_recent:{policy:most_recent}}")
    history = _policy("history_policy", {"policy": cfg.history_policy}, response, cfg, out)
    arms = {name: _policy(name, spec, response, cfg, out) for name, spec in arms_cfg.items()}
    trained = [name for name, policy in arms.items() if policy is None]  # checked, not trained
    if trained:  # trained on the history: run it alone first, as the site did
        before = ClosedLoop(sim, {"site": history}, history, cfg.history_days, 0, k=cfg.k,
                            response=response, seed=cfg.seed)  # fmt: skip
        export = before.run().write(out / "history")
        for name in trained:
            arms[name] = _policy(name, arms_cfg[name], response, cfg, out, export)
    arms = {name: arms[name] for name in arms_cfg}  # the config's order
    loop = ClosedLoop(
        sim, arms, history, cfg.history_days, cfg.test_days, split=cfg.get("split"), k=cfg.k,
        response=response, seed=cfg.seed, workdir=out / "work" if _retrains(arms_cfg) else None,
    )  # fmt: skip
    logs = loop.run()
    paths = logs.write(out / "logs")
    summary = summarize_logs(out / "logs", cfg)
    write_text(out / "simulate.json", json.dumps(summary, indent=2, default=str) + "\n")
    from recsys.evaluation.abtest_report import to_markdown

    log.info("the test period, arms against %s:\n%s", summary["control"], to_markdown(summary))
    log.info("logs in %s; summary in %s", paths["views"].parent, out / "simulate.json")
    return summary


def _retrains(arms_cfg: dict) -> bool:
    return any(spec.get("retrain_days") for spec in arms_cfg.values())


def _policy(name, spec: dict, response: Response, cfg, out: Path, export=None) -> Policy | None:
    """The arm's block; None for a block to train on the history (``export``) not yet run."""
    odd = set(spec) - ARM_KEYS
    if odd or spec.get("policy") not in KINDS:
        raise ConfigError(
            f"arm {name}: policy must be one of {', '.join(KINDS)} (got {spec.get('policy')!r})"
            + (f"; unknown setting(s) {sorted(odd)}, known: {sorted(ARM_KEYS)}" if odd else "")
        )
    kind = spec["policy"]
    fresh = float(spec.get("fresh_days", 2.0))
    if kind == "most_recent":
        return MostRecent()
    if kind == "most_popular":
        return MostPopular()
    if kind == "random":
        return RandomRecent(pool=int(spec.get("pool", 200)), seed=cfg.seed)
    if kind == "oracle":
        return Oracle(fresh, response)
    if not (spec.get("train") or spec.get("checkpoint")):
        raise ConfigError(f"arm {name}: policy model needs train=[overrides] or checkpoint=PATH")
    if export is None and spec.get("train"):
        return None  # trained once the history has run (simulate)
    catalogue = out / "catalogue.csv"
    if not catalogue.exists():  # the site's CMS over the whole run: new articles by content
        world = PublisherSimulator(**OmegaConf.to_container(cfg.world, resolve=True))
        write_text(catalogue, world.articles_frame(float("inf")).to_csv(index=False))
    trainer = None
    if spec.get("train"):
        trainer = TrainOnLogs(out / "models", name, list(spec["train"]))
        checkpoint = trainer(export, 0)
    else:
        checkpoint = spec["checkpoint"]
    return TrainedBlock(
        checkpoint, fresh, spec.get("retrain_days"), trainer,
        float(spec.get("context_weight", 1.0)), items=str(catalogue),
    )  # fmt: skip


def summarize_logs(folder: Path, cfg: DictConfig) -> dict:
    """The arms compared on the test period of the logs written in ``folder``
    (``recsys.evaluation.abtest``, read as ``recsys-abtest`` reads a deployment's log)."""
    from recsys.data.ab_logs import read_log
    from recsys.evaluation import abtest

    logs = read_log(folder)
    views = logs.views[logs.views["arm"] != HISTORY_ARM]
    shown = None if logs.impressions is None else logs.impressions[
        logs.impressions["arm"] != HISTORY_ARM]  # fmt: skip
    control = cfg.get("control") or next(iter(cfg.arms))
    return abtest.summarize(
        views, shown, logs.assignment, control=control, bounce_seconds=cfg.bounce_seconds,
        resamples=cfg.resamples, seed=cfg.seed, expected_split=cfg.get("split"),
    )  # fmt: skip
