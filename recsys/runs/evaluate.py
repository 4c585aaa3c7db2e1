"""``recsys-eval``'s run: a checkpoint re-evaluated on the test part of its own data."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from recsys.data.datamodule import RecsysDataModule
from recsys.data.interactions import same_ids
from recsys.errors import CheckpointError
from recsys.models.base import RecommenderModule
from recsys.models.checkpoint import load_model
from recsys.registry import check_targets, trusting
from recsys.runs.checks import check_adjustment
from recsys.runs.outputs import write_outputs

log = logging.getLogger(__name__)


def load_checkpoint_model(cfg: DictConfig) -> RecommenderModule:
    """The model of ``cfg.ckpt_path`` (classes of ``cfg.trusted_packages`` allowed)."""
    return load_model(cfg.ckpt_path, trusted_packages=list(cfg.get("trusted_packages") or []))


def checkpoint_datamodule(cfg: DictConfig, model: RecommenderModule) -> tuple:
    """The datamodule (set up) and data config a checkpointed ``model`` was trained with
    (``paths.data_dir`` from this run's config; ``evaluator`` and ``propensity`` given on
    the command line replace the run's). The stored config may name trusted classes only.
    Raises CheckpointError when the data's ids or contents differ from the checkpoint's."""
    stored = (model.run_config or {}).get("data")
    if not stored:
        raise CheckpointError(f"{cfg.ckpt_path} holds no data config to evaluate with")
    with trusting(cfg.get("trusted_packages")):
        check_targets(stored, f"the data config stored in {cfg.ckpt_path}")
    data_cfg = OmegaConf.create(
        {
            "paths": OmegaConf.to_container(cfg.paths, resolve=True),
            "data_cache": cfg.get("data_cache", True),
            "eval_batch_size": cfg.get("eval_batch_size", 1024),
            **stored,
        }
    )
    for group in ("evaluator", "propensity"):  # chosen on the command line: they replace the run's
        if cfg.get(group) is not None:
            data_cfg[group] = OmegaConf.to_container(cfg[group], resolve=True)
    with trusting(cfg.get("trusted_packages")):
        dm = RecsysDataModule.from_config(data_cfg)
    source = data_cfg.data.get("path", "the generator")
    for kind, ours in (("user", dm.user_ids), ("item", dm.item_ids)):
        theirs = getattr(model, f"{kind}_ids")
        if theirs is None or not same_ids(theirs, ours):
            raise CheckpointError(
                f"the {kind} ids of {cfg.ckpt_path} differ from those of its dataset as loaded "
                f"now from {source}: the data has changed"
            )
    check_same_data(model.data_fingerprint or {}, dm.fingerprint, cfg.ckpt_path, source)
    return dm, data_cfg


def check_same_data(stored: dict, now: dict, ckpt_path, source) -> None:
    """CheckpointError naming the parts of the split whose contents differ (``stored``
    and ``now`` are ``split_fingerprint`` values)."""
    differ = [p for p in dict.fromkeys([*stored, *now]) if stored.get(p) != now.get(p)]
    if not differ:
        return

    def pairs(fp: dict, part: str) -> str:
        return f"{fp[part]['pairs']:,}" if part in fp else "none"

    parts = "; ".join(
        f"{p} part ({pairs(stored, p)} pairs then, {pairs(now, p)} now)" for p in differ
    )
    raise CheckpointError(
        f"the data loaded now from {source} differs from what {ckpt_path} was trained and "
        f"tested on, with the same ids: {parts}; evaluate on the original data, or retrain"
    )


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the model in ``cfg.ckpt_path`` on the data, split and evaluator it was trained
    with (stored in the checkpoint; ``paths.data_dir`` is taken from this run's config), and
    write ``metrics.json`` and ``per_user_metrics.parquet`` into ``cfg.paths.output_dir``.
    ``evaluator``, ``propensity`` and ``popularity_adjustment`` given on the command line
    replace the run's."""
    model = load_checkpoint_model(cfg)
    dm, data_cfg = checkpoint_datamodule(cfg, model)
    data = dm.training_data
    evaluator = hydra.utils.instantiate(data_cfg.evaluator)
    evaluator.prepare(data)
    model.evaluator = evaluator
    if cfg.get("popularity_adjustment") is not None:
        check_adjustment(cfg.popularity_adjustment, data.propensity is not None)
        model.set_score_adjustment(data.propensity, cfg.popularity_adjustment)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    trainer.test(model, datamodule=dm, verbose=False)
    return write_outputs(
        model.metrics["test"],
        model.per_user["test"],
        dm.user_ids,
        data.user_counts(),
        cfg.paths.output_dir,
        dm.fingerprint,
    )
