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
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._start
        pl_module.log("time/train_epoch_s", seconds, on_epoch=True, logger=bool(trainer.loggers))
        log.info("epoch %d: training took %.2f s", trainer.current_epoch, seconds)
