"""Lightning callbacks of the framework."""

from __future__ import annotations

import logging
import time

import lightning as L

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
