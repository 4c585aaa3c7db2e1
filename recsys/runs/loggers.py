"""Experiment trackers beside TensorBoard (``logger=csv``, ``logger=mlflow``, ``logger=wandb``,
or several: ``logger=[tensorboard,mlflow]``), and the one way a run hands each of them its
hyperparameters and final metrics (``log_run``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger


def mlflow_key(name: str) -> str:
    """A metric name as MLflow allows it (letters, digits, ``_ - . / space``): ``@`` becomes
    ``_at_`` and ``+`` ``plus`` (``test/ndcg@20/hist_10+`` -> ``test/ndcg_at_20/hist_10plus``),
    any other character ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name.replace("@", "_at_").replace("+", "plus"))


class RecsysMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger with metric names as ``mlflow_key`` writes them (Lightning's
    own would drop the ``@``, ``ndcg@20`` becoming ``ndcg20``, with a warning per name)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics({mlflow_key(k): v for k, v in metrics.items()}, step)


def log_run(
    loggers: Sequence[Logger], hparams: dict, metrics: Mapping[str, float], step: int
) -> None:
    """Hand every logger the run's ``hparams`` and its final ``metrics`` (name -> value), each
    in its own way: TensorBoard as one HParams row (``log_hyperparams(..., metrics=)``, a
    keyword only its logger takes); the others as hyperparameters plus metrics at ``step``."""
    for lg in loggers:
        if isinstance(lg, TensorBoardLogger):
            lg.log_hyperparams(hparams, metrics=dict(metrics))
        else:
            lg.log_hyperparams(hparams)
            lg.log_metrics(dict(metrics), step=step)
        lg.save()
