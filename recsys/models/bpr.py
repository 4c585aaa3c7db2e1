"""Matrix factorization with the BPR loss (Rendle et al. 2009)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recsys.models.base import RecommenderModule
from recsys.models.sampling import TripleSampler

OPTIMIZERS = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad, "sgd": torch.optim.SGD}


def bpr_loss(
    u: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    b_i: torch.Tensor | None = None,
    b_j: torch.Tensor | None = None,
    regularization: float = 0.0,
) -> torch.Tensor:
    """Mean over the batch of -log sigmoid(x_ui - x_uj) + regularization * (|u|^2 + |i|^2 +
    |j|^2 + b_i^2 + b_j^2), with x_ui = u . i + b_i. Shapes: ``(B, k)`` and ``(B,)``."""
    x_ui = (u * i).sum(1)
    x_uj = (u * j).sum(1)
    penalty = u.pow(2).sum(1) + i.pow(2).sum(1) + j.pow(2).sum(1)
    if b_i is not None:
        x_ui, x_uj = x_ui + b_i, x_uj + b_j
        penalty = penalty + b_i.pow(2) + b_j.pow(2)
    return (-F.logsigmoid(x_ui - x_uj) + regularization * penalty).mean()


class BPR(RecommenderModule):
    """Users' and items' embeddings (and item biases) trained on sampled (u, i, j) triples,
    a training pair (u, i) against a negative item j, with the BPR loss (``bpr_loss``).

    Sampling runs in batches on the model's device. One epoch = ``samples_per_epoch``
    triples (default: one per training interaction) in batches of ``batch_size``.

    Args:
        factors: embedding size k.
        lr, optimizer (``adam``, ``adagrad``, ``sgd``), regularization: training.
        batch_size: triples per optimizer step.
        samples_per_epoch: triples per epoch; None = number of training interactions.
        negatives: ``uniform`` or ``popularity`` (in proportion to training popularity).
        reject_seen: redraw negatives the user interacted with.
        item_bias: learn a bias per item.
        init_std: standard deviation of the normal initialization.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        lr: float = 0.01,
        optimizer: str = "adam",
        regularization: float = 1e-5,
        batch_size: int = 4096,
        samples_per_epoch: int | None = None,
        negatives: str = "uniform",
        reject_seen: bool = True,
        item_bias: bool = False,
        init_std: float = 0.1,
    ) -> None:
        super().__init__(n_users, n_items)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"model.optimizer must be one of {list(OPTIMIZERS)}")
        self.save_hyperparameters(logger=False)
        self.user_emb = nn.Parameter(torch.randn(n_users, factors) * init_std)
        self.item_emb = nn.Parameter(torch.randn(n_items, factors) * init_std)
        self.item_bias = nn.Parameter(torch.zeros(n_items)) if item_bias else None
        self.sampler: TripleSampler | None = None

    def on_fit_start(self) -> None:
        super().on_fit_start()
        h = self.hparams
        self.sampler = TripleSampler(self.seen, self.device, h.negatives, h.reject_seen)

    def steps_per_epoch(self) -> int:
        n = self.hparams.samples_per_epoch or self.seen.nnz
        return max(1, math.ceil(n / self.hparams.batch_size))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        users, pos, neg = self.sampler.sample(self.hparams.batch_size)
        b = self.item_bias
        loss = bpr_loss(
            self.user_emb[users],
            self.item_emb[pos],
            self.item_emb[neg],
            None if b is None else b[pos],
            None if b is None else b[neg],
            self.hparams.regularization,
        )
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.hparams.optimizer](self.parameters(), lr=self.hparams.lr)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        scores = self.user_emb[users] @ self.item_emb.T
        return scores if self.item_bias is None else scores + self.item_bias
