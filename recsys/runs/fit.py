"""``recsys-train``'s run: seed -> data -> model -> fit -> test on the best checkpoint ->
outputs, in the manner of lightning-hydra-template's ``train.py``."""

from __future__ import annotations

import logging

import hydra
import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from recsys.callbacks import BestValidation
from recsys.config import data_config
from recsys.data.datamodule import RecsysDataModule
from recsys.errors import RecsysError
from recsys.plots import metrics_at_k_figure, png_array, popularity_figure
from recsys.registry import trusting
from recsys.run_names import run_overrides
from recsys.runs.checks import (
    check_adjustment,
    check_optimized_metric,
    check_seed,
    check_trainer,
)
from recsys.runs.loggers import log_run
from recsys.runs.outputs import write_outputs

log = logging.getLogger(__name__)


def train(
    cfg: DictConfig, callbacks: list[L.Callback] | None = None, overrides: list[str] | None = None
) -> tuple[float | None, dict[str, float]]:
    """Run one experiment; returns (value of ``optimized_metric``, test metrics).
    ``callbacks`` are added to the config's (e.g. a sweep's pruning callback); ``overrides``
    are the settings that set this run apart, leading its hyperparameters in the trackers
    (default: what the command line changed).

    Writes into ``cfg.paths.output_dir``: ``tensorboard/``, ``checkpoints/``,
    ``metrics.json`` (the test metrics, and the best epoch's validation metrics with
    ``best_epoch``) and ``per_user_metrics.parquet`` (Hydra writes ``.hydra/``).
    Settings that cannot work together raise ConfigError before any training.
    """
    check_seed(cfg.seed)
    check_trainer(cfg.trainer)
    evaluator = hydra.utils.instantiate(cfg.evaluator)
    check_optimized_metric(cfg.get("optimized_metric"), evaluator)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = RecsysDataModule.from_config(cfg)
    data = dm.training_data
    beta = cfg.get("popularity_adjustment", 0.0)
    check_adjustment(beta, data.propensity is not None)
    with trusting(cfg.get("trusted_packages")):
        model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
    evaluator.prepare(data)
    model.evaluator = evaluator
    model.set_score_adjustment(data.propensity, beta)
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
    ckpt = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    best_val = _best_validation(ckpt, cfg.get("optimized_metric"), dm.has_validation)
    if best_val is not None:
        callbacks.append(best_val)
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]
    extra = {} if dm.has_validation else {"limit_val_batches": 0}
    if ckpt is None:
        extra["enable_checkpointing"] = False  # else Lightning adds a checkpoint of its own
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, **extra)
    _log_data(trainer, dm)

    trainer.fit(model, datamodule=dm)

    best = (ckpt.best_model_path or ckpt.last_model_path) if ckpt else ""
    log.info("testing %s", best or "the final model")
    trainer.test(model, datamodule=dm, ckpt_path=best or None, verbose=False)
    metrics = model.metrics["test"]
    if trainer.is_global_zero:  # other processes of trainer=ddp hold the same metrics
        validation = {}
        if best_val is not None and best_val.epoch is not None:
            validation = {**best_val.metrics, "best_epoch": best_val.epoch}
        write_outputs(
            metrics, model.per_user["test"], dm.user_ids, data.user_counts(),
            cfg.paths.output_dir, dm.fingerprint, validation,
        )  # fmt: skip

    log_run(trainer.loggers, hparams_of(cfg, overrides), metrics, trainer.global_step)
    if cfg.get("figures", True):
        _log_figures(trainer, model, dm, metrics, max(evaluator.ks))

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


def _best_validation(ckpt: ModelCheckpoint | None, optimized: str | None, has_validation: bool):
    """A ``BestValidation`` on the checkpoint's monitor (else ``optimized_metric``, max), or
    None without validation data."""
    monitor = (ckpt.monitor if ckpt is not None else None) or optimized
    if not has_validation or not monitor:
        return None
    mode = ckpt.mode if ckpt is not None and ckpt.monitor else "max"
    return BestValidation(monitor, mode)


def _log_data(trainer, dm: RecsysDataModule) -> None:
    """The data summary as text, and histograms of the training strengths and confidences."""
    data = dm.training_data
    for lg in trainer.loggers:
        writer = getattr(lg, "experiment", None)
        if hasattr(writer, "add_text") and hasattr(writer, "add_histogram"):
            writer.add_text("data/summary", dm.summary_text())
            writer.add_histogram("data/train_strength", data.train.matrix.data)
            writer.add_histogram("data/train_confidence", data.confidence.data)


FIGURE_USERS = 1000  # users whose recommendations the popularity figure shows


def _log_figures(trainer, model, dm: RecsysDataModule, metrics: dict, k: int) -> None:
    """Into TensorBoard's Images tab: the test metrics against k, and the popularity of the
    top-k recommended to up to ``FIGURE_USERS`` training users (a seeded sample) against the
    catalogue's (``recsys.plots``)."""
    writers = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    if not writers or not trainer.is_global_zero:
        return
    figures = {}
    at_k = metrics_at_k_figure(metrics)
    if at_k is not None:
        figures["figures/test_metrics_at_k"] = at_k
    train = dm.training_data.train.matrix
    rng = np.random.default_rng(0)
    users = np.sort(rng.permutation(train.shape[0])[:FIGURE_USERS])
    try:
        items, _ = model.recommend(torch.from_numpy(users), k=k)
    except RecsysError as e:  # a model that recommends only from a history or a session
        log.warning("no popularity figure: %s", e)
    else:
        counts = np.asarray(train.getnnz(axis=0))
        figures["figures/recommended_popularity"] = popularity_figure(counts, items.cpu().numpy())
    for writer in writers:
        for tag, fig in figures.items():
            writer.add_image(tag, png_array(fig), trainer.current_epoch, dataformats="HWC")
        writer.flush()


def hparams_of(cfg: DictConfig, overrides: list[str] | None = None) -> dict:
    """The run's choices for the trackers (TensorBoard's HParams tab): first ``model`` (the
    config option's name, e.g. ``als``, else the class's), then the settings ``overrides``
    set (default: ``run_overrides()``, what the command line changed), then the rest of
    data, split, confidence and model, the seed and the epochs; nested keys joined by
    ``/``, no ``_target_`` entries."""
    keep = ("data", "split", "confidence", "model")
    flat = {}
    for section in keep:
        if section in cfg:
            node = OmegaConf.to_container(cfg[section], resolve=True)
            flat.update(_flatten(node, section))
    flat["seed"] = cfg.seed
    flat["max_epochs"] = cfg.trainer.get("max_epochs")
    out = {"model": _choice(cfg)}
    for override in run_overrides() if overrides is None else overrides:
        key = override.split("=", 1)[0].lstrip("+~").replace(".", "/")
        if key in flat:
            out[key] = flat.pop(key)
    out.update(flat)
    return out


def _flatten(node, prefix: str) -> dict:
    if not isinstance(node, dict):
        return {prefix: node}
    out = {}
    for key, value in node.items():
        if key != "_target_":
            out.update(_flatten(value, f"{prefix}/{key}"))
    return out


def _choice(cfg: DictConfig) -> str:
    """The model's config option (``model=bpr``), else its class name."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("model")
        if choice:
            return str(choice)
    return str(cfg.model.get("_target_", "?")).rsplit(".", 1)[-1]
