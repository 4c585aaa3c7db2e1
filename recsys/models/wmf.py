"""Weighted matrix factorization trained by gradient descent on the full implicit loss."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from recsys.data.training_data import TrainingData
from recsys.errors import RecsysError
from recsys.models.als_solvers import TorchCSR, solve_cholesky
from recsys.models.base import FactorModel, required_propensity
from recsys.models.training import (
    check_optimizer,
    make_optimizer,
    row_positions,
    shared_order,
    user_batch,
)


class EmbeddingTower(nn.Module):
    """The default tower: a table of ``(n, k)`` embeddings. A tower maps row indices
    ``(B,)`` to ``(B, k)`` vectors, and ``None`` to all ``(n, k)``; any module with that
    contract (e.g. an encoder of user or item features) can replace it."""

    def __init__(self, n: int, k: int, init_std: float = 0.1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, k) * init_std)

    def forward(self, index: torch.Tensor | None = None) -> torch.Tensor:
        return self.weight if index is None else self.weight[index]


def wmf_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    conf: torch.Tensor,
    alpha0: float,
    regularization: float,
    item_share: float = 1.0,
    inv_theta: torch.Tensor | None = None,
) -> torch.Tensor:
    """The share of the WMF objective of a batch of users (summed, not averaged):

        sum_{observed (u, i), u in batch} c_ui (s_ui - 1)^2
        + alpha0 * sum_{u in batch, all items i} s_ui^2          (= alpha0 sum_u x_u^T (Y^T Y) x_u)
        + regularization * (sum_{u in batch} |x_u|^2 + item_share * sum_i |y_i|^2),

    with s_ui = x_u . y_i. ``x`` ``(B, k)`` the batch's user vectors, ``y`` ``(n_items, k)``;
    entry j is user ``rows[j]`` (0..B-1), item ``cols[j]``, confidence ``conf[j]``. Over all
    users with ``item_share`` = B / n_users the shares add up to the full objective. The
    all-pairs term costs O((B + n_items) k^2), never O(B n_items k).

    With ``inv_theta`` (w = 1 / theta_i of each observed entry; Rel-MF, Saito et al. 2020) the
    observed pairs' terms become c_ui (w (s_ui - 1)^2 + (1 - w) s_ui^2) and the all-pairs term
    runs over the unobserved pairs only: at c = 1 and alpha0 = 1 this is exactly Rel-MF's
    sum over all pairs of (Y / theta)(1 - s)^2 + (1 - Y / theta) s^2.
    """
    s = (x[rows] * y[cols]).sum(1)
    if inv_theta is None:
        observed = (conf * (s - 1) ** 2).sum()
    else:
        w = inv_theta
        observed = (conf * (w * (s - 1) ** 2 + (1 - w) * s**2) - alpha0 * s**2).sum()
    gram = y.T @ y
    all_pairs = alpha0 * ((x @ gram) * x).sum()
    penalty = regularization * (x.pow(2).sum() + item_share * y.pow(2).sum())
    return observed + all_pairs + penalty


class WMF(FactorModel):
    """Weighted matrix factorization (loss ``wmf_loss``) trained by a gradient optimizer,
    in batches of ``batch_users`` users; one epoch = every user once, in random order.

    Args:
        factors: k.
        alpha0: weight of the all-pairs term.
        regularization: L2 weight.
        lr, optimizer (``adam``, ``adagrad``, ``sgd``): training.
        batch_users: users per step.
        init_std: initialization of the default embedding towers.
        user_tower, item_tower: modules replacing the embedding tables (see EmbeddingTower).
        correction: ``none`` or ``relmf`` (Rel-MF's unbiased loss with the item propensities
            of the ``propensity`` config; see ``wmf_loss``).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        alpha0: float = 1.0,
        regularization: float = 50.0,
        lr: float = 0.01,
        optimizer: str = "adam",
        batch_users: int = 256,
        init_std: float = 0.1,
        user_tower: nn.Module | None = None,
        item_tower: nn.Module | None = None,
        correction: str = "none",
    ) -> None:
        super().__init__(n_users, n_items)
        check_optimizer(optimizer, lr)
        if correction not in ("none", "relmf"):
            raise ValueError(f"model.correction must be 'none' or 'relmf', got {correction!r}")
        self.save_hyperparameters(logger=False, ignore=["user_tower", "item_tower"])
        self.user_tower = user_tower or EmbeddingTower(n_users, factors, init_std)
        self.item_tower = item_tower or EmbeddingTower(n_items, factors, init_std)
        self._order: torch.Tensor | None = None
        self._theta: np.ndarray | None = None

    def prepare(self, data: TrainingData) -> None:
        """Takes the training confidences, and the propensities for ``correction=relmf``."""
        super().prepare(data)
        relmf = self.hparams.correction == "relmf"
        self._theta = required_propensity(data, "model.correction=relmf") if relmf else None

    def on_fit_start(self) -> None:
        super().on_fit_start()
        conf, dev = self.train_confidence, self.device
        self._indptr = torch.from_numpy(conf.indptr.astype(np.int64)).to(dev)
        self._indices = torch.from_numpy(conf.indices.astype(np.int64)).to(dev)
        self._conf = torch.from_numpy(conf.data.astype(np.float32)).to(dev)
        self._inv_theta = None
        if self._theta is not None:
            self._inv_theta = torch.from_numpy((1.0 / self._theta).astype(np.float32)).to(dev)

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.n_users / self.hparams.batch_users))

    def on_train_epoch_start(self) -> None:
        self._order = shared_order(self.n_users, self.device)  # the same in every process

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        users = user_batch(batch_idx, self._order, self.hparams.batch_users)
        if len(users) == 0:  # the last round of batches has none left for this process
            return sum(p.sum() for p in self.parameters()) * 0.0
        rows, pos = row_positions(self._indptr, users)
        h = self.hparams
        cols = self._indices[pos]
        loss = wmf_loss(
            self.user_tower(users),
            self.item_tower(None),
            rows,
            cols,
            self._conf[pos],
            h.alpha0,
            h.regularization,
            item_share=len(users) / self.n_users,
            inv_theta=None if self._inv_theta is None else self._inv_theta[cols],
        )
        self.log_train("train/loss", loss, reduce_fx="sum", prog_bar=True)
        return loss / len(users)

    def divergence_hint(self) -> str:
        lr = self.hparams.lr
        optimizer = self.hparams.optimizer
        return (
            f"model.lr={lr:g} is likely too high for model.optimizer={optimizer} (try {lr / 10:g})"
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.hparams.optimizer, self.parameters(), self.hparams.lr)

    def user_table(self, users: torch.Tensor | None = None) -> torch.Tensor:
        return self.user_tower(users)

    def item_table(self) -> torch.Tensor:
        return self.item_tower(None)

    @torch.no_grad()
    def fold_in_rows(
        self, rows: torch.Tensor, cols: torch.Tensor, conf: torch.Tensor, n_users: int
    ) -> torch.Tensor:
        """``(n_users, k)`` vectors of users not in training, from their items (entry j: user
        ``rows[j]``, rows ascending, has item ``cols[j]`` with confidence ``conf[j]``): the
        exact minimizer of each one's share of ``wmf_loss`` with the items fixed,
        x = (sum_obs c y y^T + alpha0 Y^T Y + regularization I)^-1 sum_obs c y."""
        h = self.hparams
        if h.correction != "none":
            raise RecsysError("WMF fold-in is for correction=none")
        y = self.item_tower(None)
        conf = conf.to(y.dtype)
        # solve_cholesky weighs an observed entry by its confidence instead of alpha0 and
        # pulls it to its target: weight c + alpha0 and target c / (c + alpha0) give WMF's
        csr = TorchCSR.from_entries(rows, cols, conf + h.alpha0, (n_users, self.n_items), y)
        csr.target = (conf / (conf + h.alpha0)).to(y.device)
        reg = torch.full((n_users,), float(h.regularization), dtype=y.dtype, device=y.device)
        return solve_cholesky(csr, y, reg, h.alpha0)
