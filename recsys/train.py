"""``recsys-train``: seed -> data -> model -> fit -> test on the best checkpoint -> outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from recsys.runner import CONFIG_DIR, build_datamodule, data_config, user_errors, write_outputs

log = logging.getLogger(__name__)


def train(
    cfg: DictConfig, callbacks: list[L.Callback] | None = None
) -> tuple[float | None, dict[str, float]]:
    """Run one experiment; returns (value of ``optimized_metric``, test metrics).
    ``callbacks`` are added to the config's (e.g. a sweep's pruning callback).

    Writes into ``cfg.paths.output_dir``: ``tensorboard/``, ``checkpoints/``,
    ``metrics.json`` and ``per_user_metrics.parquet`` (Hydra writes ``.hydra/``).
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
    model.evaluator = hydra.utils.instantiate(cfg.evaluator)
    model.set_score_adjustment(dm.propensity.theta, cfg.get("popularity_adjustment", 0.0))
    model.run_config = {
        "resolved": OmegaConf.to_container(cfg, resolve=True),
        "data": data_config(cfg),
    }

    callbacks_cfg = cfg.get("callbacks") or {}
    if not dm.has_validation and "model_checkpoint" in callbacks_cfg:
        log.warning("no validation data: keeping the last epoch's checkpoint")
        with open_dict(cfg):
            cfg.callbacks.model_checkpoint.monitor = None
    callbacks = [hydra.utils.instantiate(c) for c in callbacks_cfg.values()] + (callbacks or [])
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]
    extra = {} if dm.has_validation else {"limit_val_batches": 0}
    if not any(isinstance(c, ModelCheckpoint) for c in callbacks):
        extra["enable_checkpointing"] = False  # else Lightning adds a checkpoint of its own
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, **extra)
    _log_data(trainer, dm)

    trainer.fit(model, datamodule=dm)

    ckpt = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    best = (ckpt.best_model_path or ckpt.last_model_path) if ckpt else ""
    log.info("testing %s", best or "the final model")
    trainer.test(model, datamodule=dm, ckpt_path=best or None, verbose=False)
    if trainer.is_global_zero:
        metrics = write_outputs(model, dm, cfg.paths.output_dir)
    else:  # another process of trainer=ddp: the same metrics, written by rank 0
        metrics = model.metrics["test"]

    for lg in trainer.loggers:
        lg.log_hyperparams(hparams_of(cfg), metrics=metrics)
        lg.save()

    name = cfg.get("optimized_metric")
    value = None
    if name:
        if ckpt is not None and ckpt.monitor == name and ckpt.best_model_score is not None:
            value = float(ckpt.best_model_score)
        elif name in metrics:
            value = metrics[name]
        else:
            log.warning("optimized_metric %s was not computed", name)
    return value, metrics


def _log_data(trainer, dm) -> None:
    """The data summary as text, and histograms of the training strengths and confidences."""
    for lg in trainer.loggers:
        writer = getattr(lg, "experiment", None)
        if hasattr(writer, "add_text") and hasattr(writer, "add_histogram"):
            writer.add_text("data/summary", dm.summary_text())
            writer.add_histogram("data/train_strength", dm.split.train.matrix.data)
            writer.add_histogram("data/train_confidence", dm.train_confidence.data)


def hparams_of(cfg: DictConfig) -> dict:
    """The run's choices for TensorBoard's HParams tab (nested keys joined by '/')."""
    keep = ("seed", "data", "split", "confidence", "model")
    out = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in keep[1:] if k in cfg}
    out["seed"] = cfg.seed
    out["max_epochs"] = cfg.trainer.get("max_epochs")
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> float | None:
    value, _ = train(cfg)
    log.info("run directory: %s", Path(cfg.paths.output_dir).resolve())
    return value


if __name__ == "__main__":
    main()
