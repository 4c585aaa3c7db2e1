"""Implicit alternating least squares (Hu, Koren & Volinsky 2008), one code path for CPU/GPU."""

from __future__ import annotations

import numpy as np
import torch

from recsys.data.training_data import TrainingData
from recsys.models.als_distributed import distributed_world, sharded_solve
from recsys.models.als_solvers import (
    TorchCSR,
    als_loss,
    row_regularization,
    solve_cg,
    solve_cholesky,
)
from recsys.models.base import ClosedFormModule, FactorModel, required_propensity

SOLVERS = ("cg", "cholesky")
CORRECTIONS = ("none", "relmf")


class ALS(FactorModel, ClosedFormModule):
    """Confidence-weighted matrix factorization fitted by alternating least squares.

    Loss (users u are rows, items i columns; c_ui the training confidences, see
    ``recsys.data.confidence``; x_u, y_i the factors):

        sum_{observed} c_ui (1 - x_u.y_i)^2 + alpha0 sum_{unobserved} (x_u.y_i)^2
        + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2,

    lambda_u = regularization * (n_u + alpha0 * n_items)^reg_exponent (and likewise for items
    with n_users); ``reg_exponent=0`` is plain L2.

    ``correction=relmf`` is the unbiased pointwise loss of Rel-MF (Saito et al., WSDM 2020),
    sum over all pairs of (Y_ui / theta_i)(1 - s_ui)^2 + (1 - Y_ui / theta_i) s_ui^2, theta the
    item propensities of the ``propensity`` config: as a function of the factors it equals
    least squares with target 1 / theta_i on observed pairs and 0 elsewhere, so the observed
    target 1 above becomes 1 / theta_i and the same solvers apply (with the binary confidence
    at alpha 0 and alpha0 = 1 this is Rel-MF's loss up to a constant; other confidences and
    alpha0 keep their weights). One epoch = one user sweep then one item
    sweep, each solving every row's least squares exactly (``cholesky``) or by ``cg_steps``
    conjugate-gradient steps warm-started from the current factors (``cg``).

    Args:
        n_users, n_items: shape, filled in from the data.
        factors: latent dimension k.
        regularization: lambda.
        alpha0: weight of unobserved pairs.
        reg_exponent: nu of the frequency-scaled regularization.
        solver: ``cg`` or ``cholesky``.
        cg_steps: conjugate-gradient steps per half-step.
        init_std: standard deviation of the normal initialization.
        compute_loss: log ``train/loss`` after each epoch (costs O(nnz k + (m + n) k^2)).
        budget: elements of the largest temporary tensor of a half-step (memory control).
        correction: ``none`` or ``relmf`` (targets 1 / theta_i, see above).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        regularization: float = 50.0,
        alpha0: float = 1.0,
        reg_exponent: float = 0.0,
        solver: str = "cg",
        cg_steps: int = 3,
        init_std: float = 0.01,
        compute_loss: bool = True,
        budget: int = 1 << 24,
        correction: str = "none",
    ) -> None:
        super().__init__(n_users, n_items)
        if solver not in SOLVERS:
            raise ValueError(f"model.solver must be one of {SOLVERS}, got {solver!r}")
        if correction not in CORRECTIONS:
            raise ValueError(f"model.correction must be one of {CORRECTIONS}, got {correction!r}")
        if regularization < 0 or alpha0 < 0 or factors < 1 or cg_steps < 1:
            raise ValueError("ALS needs factors >= 1, cg_steps >= 1, regularization, alpha0 >= 0")
        self.save_hyperparameters(logger=False)
        self.register_buffer("user_factors", torch.randn(n_users, factors) * init_std)
        self.register_buffer("item_factors", torch.randn(n_items, factors) * init_std)
        self.register_buffer("item_target", torch.ones(n_items))  # 1 / theta_i under relmf
        self._by_user: TorchCSR | None = None
        self._by_item: TorchCSR | None = None

    # -- training -------------------------------------------------------------------------
    def set_train_confidence(self, confidence) -> None:
        """Use the ``(n_users, n_items)`` scipy CSR of training confidences."""
        self._by_user = TorchCSR.from_scipy(confidence, self.device)
        self._by_item = TorchCSR.from_scipy(confidence.T.tocsr(), self.device)
        h = self.hparams
        if h.correction == "relmf":
            t = self.item_target.to(self.device)
            self._by_user.target = t[self._by_user.indices]
            self._by_item.target = torch.repeat_interleave(t, self._by_item.counts)
        self._reg_users = row_regularization(
            self._by_user.counts, self.n_items, h.regularization, h.alpha0, h.reg_exponent
        )
        self._reg_items = row_regularization(
            self._by_item.counts, self.n_users, h.regularization, h.alpha0, h.reg_exponent
        )

    def set_propensity(self, theta: np.ndarray) -> None:
        """Item propensities ``(n_items,)`` for ``correction=relmf`` (targets 1 / theta)."""
        self.item_target.copy_(torch.from_numpy(1.0 / np.asarray(theta, dtype=np.float64)))

    def prepare(self, data: TrainingData) -> None:
        """Takes the training confidences, and the propensities for ``correction=relmf``."""
        super().prepare(data)
        if self.hparams.correction == "relmf":
            self.set_propensity(required_propensity(data, "model.correction=relmf"))

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.set_train_confidence(self.train_confidence)

    def divergence_hint(self) -> str:
        return (
            "the confidences are likely too large (confidence.alpha, or the strengths) for "
            f"model.regularization={self.hparams.regularization}"
        )

    def sweep(self) -> None:
        """One epoch: solve all users, then all items."""
        self._solve(self._by_user, self.item_factors, self.user_factors, self._reg_users)
        self._solve(self._by_item, self.user_factors, self.item_factors, self._reg_items)

    def _solve(self, csr, other, current, reg) -> None:
        """New factors for the rows of ``csr``, written into ``current``; across the processes
        of torch.distributed when it runs with more than one (``als_distributed``)."""
        h = self.hparams

        def solve(csr, other, current, reg, gram=None):
            if h.solver == "cholesky":
                return solve_cholesky(csr, other, reg, h.alpha0, h.budget, gram)
            return solve_cg(
                csr, other, current, reg, h.alpha0, h.cg_steps, h.budget, in_place=True, gram=gram
            )

        if distributed_world() > 1:
            sharded_solve(solve, csr, other, current, reg)
        elif h.solver == "cholesky":
            current.copy_(solve(csr, other, current, reg))
        else:
            solve(csr, other, current, reg)

    def loss(self) -> float:
        """The training objective at the current factors (float64)."""
        return als_loss(
            self._by_user,
            self.user_factors,
            self.item_factors,
            self._reg_users,
            self._reg_items,
            self.hparams.alpha0,
            self.hparams.budget,
        )

    def fit_epoch(self) -> None:
        self.sweep()
        if self.hparams.compute_loss:
            self.log_train("train/loss", self.loss(), prog_bar=True)

    # -- inference ------------------------------------------------------------------------
    def user_table(self, users: torch.Tensor | None = None) -> torch.Tensor:
        return self.user_factors if users is None else self.user_factors[users]

    def item_table(self) -> torch.Tensor:
        return self.item_factors

    @torch.no_grad()
    def fold_in_rows(
        self, rows: torch.Tensor, cols: torch.Tensor, conf: torch.Tensor, n_users: int
    ) -> torch.Tensor:
        """Exact ``(n_users, k)`` factors of users not in training, from their items: entry j
        says user ``rows[j]`` has item ``cols[j]`` with confidence ``conf[j]`` (rows
        ascending). Solves the user step's least squares (Cholesky, same lambda_u rule)."""
        csr = TorchCSR.from_entries(rows, cols, conf, (n_users, self.n_items), self.item_factors)
        h = self.hparams
        if h.correction == "relmf":
            csr.target = self.item_target.to(self.item_factors.device)[csr.indices]
        reg = row_regularization(
            csr.counts, self.n_items, h.regularization, h.alpha0, h.reg_exponent,
            self.item_factors.dtype,
        )  # fmt: skip
        return solve_cholesky(csr, self.item_factors, reg, h.alpha0, h.budget, self._gram())

    def _gram(self) -> torch.Tensor:
        """Y^T Y of the item factors, kept until they change (a new reader's fold-in on a
        large catalogue would otherwise recompute it for every request)."""
        y = self.item_factors
        key = (y.data_ptr(), y._version, tuple(y.shape), y.device)
        if getattr(self, "_gram_key", None) != key:
            self._gram_cache, self._gram_key = y.T @ y, key
        return self._gram_cache

    def fold_in(self, items: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        """Exact ``(k,)`` factors of one new user from their item indices and confidences."""
        rows = torch.zeros(len(items), dtype=torch.int64)
        return self.fold_in_rows(rows, items, confidence, 1)[0]
