"""Training-free graph filters: GF-CF (Shen et al. 2021) and BSPM (Choi et al. 2023).

Both start from the binary training matrix R ``(n_users, n_items)`` normalized by degrees,
R~ = D_U^-1/2 R D_I^-1/2, and score a user's row x ``(n_items,)`` with two filters:

- the linear low-pass filter P~ = R~^T R~ (item-item, never formed: x P~ = (x R~^T) R~ is two
  sparse products);
- the ideal low-pass filter x D_I^-1/2 V V^T D_I^1/2, V ``(n_items, k)`` the top-k right
  singular vectors of R~ (a truncated SVD, ARPACK).

The SVD is the whole fit; every score is computed from the user's row at inference, so users
never trained on (fold-in) are scored by the same formula.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from recsys.errors import ConfigError
from recsys.models.base import OnePassModule

log = logging.getLogger(__name__)
SOLVERS = ("euler", "rk4")


def normalized_matrix(seen: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(R~, d_I^-1/2)``: R~ = D_U^-1/2 R D_I^-1/2 ``(n_users, n_items)`` float32 CSR of the
    binary matrix R with ``seen``'s sparsity, and ``(n_items,)`` d_I^-1/2 (0 for items no
    user has)."""
    r = seen.astype(np.float32, copy=True).tocsr()
    r.data[:] = 1.0

    def inv_sqrt(degrees: np.ndarray) -> np.ndarray:
        out = np.zeros(len(degrees), np.float64)
        np.divide(1.0, np.sqrt(degrees), out=out, where=degrees > 0)
        return out

    d_u = inv_sqrt(np.asarray(r.sum(axis=1)).ravel())
    d_i = inv_sqrt(np.asarray(r.sum(axis=0)).ravel())
    return (sp.diags(d_u) @ r @ sp.diags(d_i)).astype(np.float32).tocsr(), d_i


def top_right_singular_vectors(matrix: sp.csr_matrix, k: int, seed: int = 0) -> np.ndarray:
    """``(n_items, k)`` float32: the right singular vectors of ``matrix`` of the k largest
    singular values, in decreasing order (ARPACK in float64; a dense SVD when k is close to
    the smaller side). Columns are determined up to sign, which V V^T does not see."""
    m = min(matrix.shape)
    if k >= m - 1:
        _, s, vt = np.linalg.svd(matrix.toarray().astype(np.float64), full_matrices=False)
        return vt[:k].T.astype(np.float32)
    v0 = np.random.default_rng(seed).uniform(-1, 1, m)
    _, s, vt = sla.svds(matrix.astype(np.float64), k=k, v0=v0)
    return vt[np.argsort(-s)].T.astype(np.float32).copy()


def integrate(
    f: Callable[[torch.Tensor], torch.Tensor], y0: torch.Tensor, t: float, steps: int, solver: str
) -> list[torch.Tensor]:
    """Fixed-step solution of the autonomous ODE dy/dt = f(y) from y(0) = ``y0`` to time ``t``
    in ``steps`` equal steps h = t / steps: ``[y(0), y(h), ..., y(t)]``. ``euler``: y += h f(y);
    ``rk4``: the classical fourth-order Runge-Kutta step."""
    h, ys = t / steps, [y0]
    for _ in range(steps):
        y = ys[-1]
        if solver == "euler":
            ys.append(y + h * f(y))
        else:
            k1 = f(y)
            k2 = f(y + (h / 2) * k1)
            k3 = f(y + (h / 2) * k2)
            k4 = f(y + h * k3)
            ys.append(y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4))
    return ys


def _csr_tensor(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)),
            m.shape,
            check_invariants=False,  # built here from a valid scipy CSR
        ).to(device)


class GraphFilterModule(OnePassModule):
    """What GF-CF and BSPM share: R~, the ideal filter's vectors, and the two filters applied
    to a block of users' rows. Rows are kept transposed, ``(n_items, B)``, so that each sparse
    product streams contiguous rows."""

    def __init__(self, n_users: int, n_items: int, ideal_rank: int) -> None:
        super().__init__(n_users, n_items)
        if ideal_rank < 0:
            raise ConfigError(f"model.ideal_rank must be >= 0, got {ideal_rank}")
        self.register_data_buffer("ideal_vectors", torch.zeros(0, 0))  # V (n_items, k)
        self.register_data_buffer("item_scale", torch.zeros(0))  # d_I^-1/2 (n_items,)
        self._operators: tuple | None = None

    def fit_epoch(self) -> None:
        started = time.perf_counter()
        norm, d_i = normalized_matrix(self.seen)
        k = min(int(self.hparams.ideal_rank), min(norm.shape))
        vectors = top_right_singular_vectors(norm, k) if k > 0 else np.zeros((self.n_items, 0))
        self.ideal_vectors = torch.from_numpy(np.asarray(vectors, np.float32)).to(self.device)
        self.item_scale = torch.from_numpy(d_i.astype(np.float32)).to(self.device)
        self._operators = self._operators_of(norm)
        log.info("%s: R~ normalized and a rank-%d SVD in %.1f s", type(self).__name__, k,
                 time.perf_counter() - started)  # fmt: skip

    def _operators_of(self, norm: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
        return _csr_tensor(norm, self.device), _csr_tensor(norm.T.tocsr(), self.device)

    def _ops(self) -> tuple[torch.Tensor, torch.Tensor]:
        """R~ and R~^T as sparse CSR tensors on the model's device: from the fit, or built
        once from ``seen`` (a loaded checkpoint, or the model moved to another device)."""
        if self._operators is None or self._operators[0].device != self.device:
            self._operators = self._operators_of(normalized_matrix(self.seen)[0])
        return self._operators

    def linear(self, y: torch.Tensor) -> torch.Tensor:
        """(x P~)^T for rows x given transposed, ``y`` = x^T ``(n_items, B)``: R~^T (R~ y)."""
        r, rt = self._ops()
        return rt @ (r @ y)

    def ideal(self, y: torch.Tensor) -> torch.Tensor:
        """(x D_I^-1/2 V V^T D_I^1/2)^T for ``y`` = x^T ``(n_items, B)``."""
        v, scale = self.ideal_vectors, self.item_scale.unsqueeze(1)
        inverse = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
        return inverse * (v @ (v.T @ (scale * y)))

    def filter(self, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(n_items, B)`` of the rows ``y`` ``(n_items, B)``."""
        raise NotImplementedError

    def _rows(self, rows: np.ndarray, cols: np.ndarray, n: int) -> torch.Tensor:
        y = torch.zeros(self.n_items, n, device=self.device)
        y[torch.as_tensor(cols, device=self.device), torch.as_tensor(rows, device=self.device)] = 1
        return y

    def score(self, users: torch.Tensor) -> torch.Tensor:
        sub = self.seen[users.cpu().numpy()].tocoo()
        return self.filter(self._rows(sub.row, sub.col, len(users))).T

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        """Held-out users: the same filters on their known items (binary, as in training)."""
        return self.filter(self._rows(rows.cpu().numpy(), cols.cpu().numpy(), n_users)).T


class GFCF(GraphFilterModule):
    """GF-CF (Shen et al. 2021, "How powerful is graph convolution for recommendation?"):

        s_u = x_u P~ + alpha x_u D_I^-1/2 V V^T D_I^1/2,

    x_u the user's binary row, P~ = R~^T R~, V the top ``ideal_rank`` right singular vectors of
    R~, alpha = ``ideal_weight``. The paper's gowalla setting: alpha 0.3, rank 256."""

    def __init__(
        self, n_users: int, n_items: int, ideal_weight: float = 0.3, ideal_rank: int = 256
    ) -> None:
        super().__init__(n_users, n_items, ideal_rank)
        self.save_hyperparameters(logger=False)

    def filter(self, y: torch.Tensor) -> torch.Tensor:
        out = self.linear(y)
        if self.hparams.ideal_weight and self.ideal_vectors.shape[1]:
            out += self.hparams.ideal_weight * self.ideal(y)
        return out


class BSPM(GraphFilterModule):
    """BSPM (Choi et al. 2023, "Blurring-sharpening process models for collaborative
    filtering"): three ODEs on a user's row, solved with fixed steps (``integrate``):

    - ideal:   dr/dt = r D_I^-1/2 V V^T D_I^1/2 - r, from x_u over [0, T_idl] (one Euler step
      of length 1 gives the ideal filter itself);
    - blur:    dr/dt = r P~ - r, from x_u over [0, T_b] -> b(t);
    - sharpen: dr/dt = -r P~, over [0, T_s], from b(T_b) + beta i (``early_merge``, the
      paper's BSPM-EM) or from b(T_b) -> s(t).

    Scores: s(T_s) (early merge) or s(T_s) + beta i (late merge); with
    ``point_combination`` the mean of b and s at their step points replaces s(T_s); with
    ``sharpening: false``, b replaces s. beta = ``ideal_weight``, i the ideal ODE's end point.
    The paper's gowalla BSPM-EM: rank 448, beta 0.2, blur 1 Euler step over 1, sharpen 1 RK4
    step over 2.5, early merge."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        ideal_weight: float = 0.2,
        ideal_rank: int = 448,
        ideal_time: float = 1.0,
        ideal_steps: int = 1,
        ideal_solver: str = "euler",
        blur_time: float = 1.0,
        blur_steps: int = 1,
        blur_solver: str = "euler",
        sharpen_time: float = 2.5,
        sharpen_steps: int = 1,
        sharpen_solver: str = "rk4",
        sharpening: bool = True,
        early_merge: bool = True,
        point_combination: bool = False,
    ) -> None:
        super().__init__(n_users, n_items, ideal_rank)
        self.save_hyperparameters(logger=False)
        for part in ("ideal", "blur", "sharpen"):
            solver, steps = locals()[f"{part}_solver"], locals()[f"{part}_steps"]
            if solver not in SOLVERS:
                raise ConfigError(f"model.{part}_solver must be one of {SOLVERS}, got {solver!r}")
            if steps < 1:
                raise ConfigError(f"model.{part}_steps must be >= 1, got {steps}")

    def filter(self, y: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        use_ideal = bool(hp.ideal_weight) and self.ideal_vectors.shape[1] > 0
        ideal = None
        if use_ideal:
            ideal = integrate(lambda r: self.ideal(r) - r, y, hp.ideal_time, hp.ideal_steps,
                              hp.ideal_solver)[-1]  # fmt: skip
        blurred = integrate(lambda r: self.linear(r) - r, y, hp.blur_time, hp.blur_steps,
                            hp.blur_solver)  # fmt: skip
        points = blurred[1:]
        if hp.sharpening:
            start = (
                blurred[-1] + hp.ideal_weight * ideal
                if use_ideal and hp.early_merge
                else blurred[-1]
            )
            sharpened = integrate(lambda r: -self.linear(r), start, hp.sharpen_time,
                                  hp.sharpen_steps, hp.sharpen_solver)  # fmt: skip
            points = [*points, *sharpened[1:]] if hp.point_combination else sharpened[1:]
        out = torch.stack(points).mean(0) if hp.point_combination else points[-1]
        if use_ideal and not (hp.early_merge and hp.sharpening):
            out = out + hp.ideal_weight * ideal
        return out
