"""The CPU kernel of the ALS conjugate-gradient half-step (numba; rows spread over threads).

Same equations and the same arithmetic as ``als_solvers.solve_cg`` (see there), row by row
instead of in padded batches: each row's observed entries are read straight from the CSR and
the other side's factor table, so nothing of size nnz x k is ever materialized, and the
table (a few MiB) stays in cache. ``solve_cg`` calls it for tensors on the CPU.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def cg_rows(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    target: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    gram: np.ndarray,
    reg: np.ndarray,
    alpha0: float,
    steps: int,
) -> None:
    """``steps`` CG steps on every row's normal equations, updating ``x`` ``(n_rows, k)`` in
    place. ``indptr, indices, conf`` the rows' CSR, ``target`` ``(nnz,)`` the observed
    targets (empty: all 1), ``y`` ``(n_other, k)``, ``gram`` = alpha0 Y^T Y ``(k, k)``,
    ``reg`` ``(n_rows,)`` lambda per row; all float32 (``alpha0`` too); ``indices`` int32 or
    int64."""
    n_rows, k = x.shape
    with_target = target.shape[0] > 0
    for u in prange(n_rows):
        xu = x[u].copy()
        lam = reg[u]
        r = np.empty(k, dtype=x.dtype)
        ap = np.empty(k, dtype=x.dtype)
        # r = b - A x, A v = gram v + lam v + sum_i (c_i - alpha0)(y_i . v) y_i
        for a in range(k):
            s = lam * xu[a]
            for b in range(k):
                s += gram[a, b] * xu[b]
            r[a] = -s
        for j in range(indptr[u], indptr[u + 1]):
            i = indices[j]
            c = conf[j]
            t = np.float32(0.0)
            for a in range(k):
                t += y[i, a] * xu[a]
            coef = c * (target[j] if with_target else np.float32(1.0)) - (c - alpha0) * t
            for a in range(k):
                r[a] += coef * y[i, a]
        p = r.copy()
        rs = np.float32(0.0)
        for a in range(k):
            rs += r[a] * r[a]
        for _ in range(steps):
            if rs <= 0.0:
                break
            for a in range(k):
                s = lam * p[a]
                for b in range(k):
                    s += gram[a, b] * p[b]
                ap[a] = s
            for j in range(indptr[u], indptr[u + 1]):
                i = indices[j]
                t = np.float32(0.0)
                for a in range(k):
                    t += y[i, a] * p[a]
                t *= conf[j] - alpha0
                for a in range(k):
                    ap[a] += t * y[i, a]
            denom = np.float32(0.0)
            for a in range(k):
                denom += p[a] * ap[a]
            if denom <= 0.0:
                break
            step = rs / denom
            rs_new = np.float32(0.0)
            for a in range(k):
                xu[a] += step * p[a]
                r[a] -= step * ap[a]
                rs_new += r[a] * r[a]
            beta = rs_new / rs
            for a in range(k):
                p[a] = r[a] + beta * p[a]
            rs = rs_new
        x[u] = xu


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def observed_loss(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    target: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    alpha0: float,
) -> float:
    """The observed pairs' share of the ALS objective, in float64:
    sum_obs c (p - x_u.y_i)^2 - alpha0 (x_u.y_i)^2 (``als_solvers.als_loss`` adds the rest).
    Arguments as ``cg_rows`` (``target`` empty: all 1); each row's entries are read from the
    CSR and ``y`` without gathering an nnz x k block."""
    n_rows, k = x.shape
    with_target = target.shape[0] > 0
    total = 0.0
    for u in prange(n_rows):
        xu = x[u].astype(np.float64)
        s = 0.0
        for j in range(indptr[u], indptr[u + 1]):
            i = indices[j]
            t = 0.0
            for a in range(k):
                t += xu[a] * y[i, a]
            p = np.float64(target[j]) if with_target else 1.0
            s += np.float64(conf[j]) * (p - t) ** 2 - alpha0 * t * t
        total += s
    return total


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def weighted_squares(x: np.ndarray, weight: np.ndarray) -> float:
    """sum_u weight_u |x_u|^2 in float64, for ``x`` ``(n, k)`` and ``weight`` ``(n,)``."""
    n, k = x.shape
    total = 0.0
    for u in prange(n):
        s = 0.0
        for a in range(k):
            v = np.float64(x[u, a])
            s += v * v
        total += np.float64(weight[u]) * s
    return total
