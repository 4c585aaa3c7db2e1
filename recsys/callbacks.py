"""Lightning callbacks of the framework."""

from __future__ import annotations

import logging
import math
import time

import lightning as L
import torch

from recsys.errors import DivergenceError

log = logging.getLogger(__name__)


class EpochTimer(L.Callback):
    """Logs the wall time of each training epoch as ``time/train_epoch_s`` (validation
    excluded) and prints it."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._validation = time.perf_counter(), 0.0

    # Lightning runs the epoch's validation before on_train_epoch_end: time it to leave it out
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation += time.perf_counter() - self._validation_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._start - self._validation
        pl_module.log("time/train_epoch_s", seconds, on_epoch=True, logger=bool(trainer.loggers))
        log.info("epoch %d: training took %.2f s", trainer.current_epoch, seconds)


class TrainingHealth(L.Callback):
    """Stops a run whose training went numerically wrong, with one line naming the symptom,
    the epoch and the likely setting (``model.divergence_hint()``): ``DivergenceError``, exit
    status 3; a sweep fails that trial and goes on. Checked after every training epoch:

    - the epoch's ``train/loss`` is not finite;
    - the loss keeps rising: for ``window`` epochs in a row it stays more than
      ``rise_tolerance`` (relative) above the lowest loss of the run so far;
    - the factors collapsed: every user vector, or every item vector, of a factor model is
      below ``collapse_below`` in every coordinate.

    NaN scores in validation are caught by the model itself (``RecommenderModule``).
    """

    def __init__(
        self, window: int = 3, rise_tolerance: float = 0.2, collapse_below: float = 1e-8
    ) -> None:
        if window < 1 or rise_tolerance < 0 or collapse_below < 0:
            raise ValueError("need window >= 1, rise_tolerance >= 0 and collapse_below >= 0")
        self.window, self.rise_tolerance = int(window), float(rise_tolerance)
        self.collapse_below = float(collapse_below)
        self._lowest = float("inf")
        self._rising = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._lowest, self._rising = float("inf"), 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            loss = float(loss)
            if not math.isfinite(loss):
                self._stop(pl_module, f"train/loss is {loss} at epoch {epoch}")
            if loss > self._lowest * (1 + self.rise_tolerance) and self._lowest > 0:
                self._rising += 1
                if self._rising >= self.window:
                    self._stop(
                        pl_module,
                        f"train/loss rose to {loss:.4g} at epoch {epoch}, more than "
                        f"{self.rise_tolerance:.0%} above its lowest ({self._lowest:.4g}) for "
                        f"{self._rising} epochs in a row",
                    )
            else:
                self._rising = 0
            self._lowest = min(self._lowest, loss)
        tables = pl_module.factor_tables() if hasattr(pl_module, "factor_tables") else None
        for name, table in zip(("user", "item"), tables or ()):
            with torch.no_grad():
                largest = float(table.detach().abs().max()) if table.numel() else 1.0
            if largest < self.collapse_below:
                self._stop(
                    pl_module,
                    f"the {name} factors collapsed to zero at epoch {epoch} (every coordinate "
                    f"below {self.collapse_below:g})",
                )

    @staticmethod
    def _stop(pl_module, symptom: str) -> None:
        hint = pl_module.divergence_hint() if hasattr(pl_module, "divergence_hint") else ""
        raise DivergenceError(f"training diverged: {symptom}; {hint}".rstrip("; "))


class BestValidation(L.Callback):
    """Keeps the validation metrics of the epoch that is best on ``monitor`` (``mode`` max or
    min; a later epoch replaces it only when strictly better, as ``ModelCheckpoint`` does),
    for ``metrics.json``: ``metrics`` (name -> value, ``val/...``) and ``epoch`` (None
    before any validation)."""

    def __init__(self, monitor: str, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.metrics: dict[str, float] = {}
        self.epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = getattr(pl_module, "metrics", {}).get("val") or {}
        if trainer.sanity_checking or self.monitor not in results:
            return
        value, best = results[self.monitor], self.metrics.get(self.monitor)
        if best is None or (value > best if self.mode == "max" else value < best):
            self.metrics, self.epoch = dict(results), trainer.current_epoch


class EpochAxis(L.Callback):
    """Writes each validation metric a second time into TensorBoard, as ``epoch/<name>``
    (e.g. ``epoch/val/ndcg@20``) against the epoch instead of the global step, so that the
    curves of models with one step per epoch (ALS) and thousands (BPR) line up."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = getattr(pl_module, "metrics", {}).get("val") or {}
        if trainer.sanity_checking or not results or not trainer.is_global_zero:
            return
        from lightning.pytorch.loggers import TensorBoardLogger

        for lg in trainer.loggers:
            if isinstance(lg, TensorBoardLogger):
                for name, value in results.items():
                    lg.experiment.add_scalar(f"epoch/{name}", value, trainer.current_epoch)
