"""``recsys-eval ckpt_path=...``: re-evaluate a checkpoint on the test part of its own data."""

from __future__ import annotations

import logging

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from recsys.checkpoint import load_model
from recsys.errors import CheckpointError
from recsys.runner import CONFIG_DIR, build_datamodule, user_errors, write_outputs

log = logging.getLogger(__name__)


def checkpoint_datamodule(cfg: DictConfig, model) -> tuple:
    """The datamodule (set up) and data config a checkpointed ``model`` was trained with
    (``paths.data_dir`` from this run's config; ``evaluator`` and ``propensity`` given on
    the command line replace the run's). Raises CheckpointError when its ids differ."""
    stored = (model.run_config or {}).get("data")
    if not stored:
        raise CheckpointError(f"{cfg.ckpt_path} holds no data config to evaluate with")
    data_cfg = OmegaConf.create(
        {
            "paths": OmegaConf.to_container(cfg.paths, resolve=True),
            "data_cache": cfg.get("data_cache", False),
            **stored,
        }
    )
    for group in ("evaluator", "propensity"):  # chosen on the command line: they replace the run's
        if cfg.get(group) is not None:
            data_cfg[group] = OmegaConf.to_container(cfg[group], resolve=True)
    dm = build_datamodule(data_cfg)
    for kind, ours in (("user", dm.user_ids), ("item", dm.item_ids)):
        theirs = getattr(model, f"{kind}_ids")
        if theirs is None or len(theirs) != len(ours) or np.any(np.asarray(theirs) != ours):
            raise CheckpointError(
                f"the {kind} ids of {cfg.ckpt_path} differ from those of its dataset as loaded "
                f"now from {data_cfg.data.get('path', 'the generator')}: the data has changed"
            )
    return dm, data_cfg


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the model in ``cfg.ckpt_path`` on the data, split and evaluator it was trained
    with (stored in the checkpoint; ``paths.data_dir`` is taken from this run's config), and
    write ``metrics.json`` and ``per_user_metrics.parquet`` into ``cfg.paths.output_dir``.
    ``evaluator``, ``propensity`` and ``popularity_adjustment`` given on the command line
    replace the run's."""
    model = load_model(cfg.ckpt_path)
    dm, data_cfg = checkpoint_datamodule(cfg, model)
    model.evaluator = hydra.utils.instantiate(data_cfg.evaluator)
    if cfg.get("popularity_adjustment") is not None:
        model.set_score_adjustment(dm.propensity.theta, cfg.popularity_adjustment)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    trainer.test(model, datamodule=dm, verbose=False)
    return write_outputs(model, dm, cfg.paths.output_dir)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
