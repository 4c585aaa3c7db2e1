"""Scores of rows against gathered rows of a table, without building the gather.

For per-pair negatives (B pairs, n negatives each, k dimensions) the plain way,
``table[idx]`` ``(B, n, k)`` then a batched dot product, writes and reads B n k floats
forward and scatters as many backward: at gowalla's 300 negatives per pair and 1,024 pairs
a batch, 79 MB a step, which is most of an epoch's time on a CPU. ``gathered_scores`` reads
each gathered row once, where it is used, forward and backward (numba kernels on the CPU;
the plain gather elsewhere).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import get_num_threads, njit, prange


def gathered_scores(
    u: torch.Tensor, table: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dots, squares)``, each ``(B, n)``: dots[b, t] = u[b] . table[idx[b, t]] and
    squares[b, t] = |table[idx[b, t]]|^2, differentiable in ``u`` ``(B, k)`` and ``table``
    ``(N, k)`` (``idx`` ``(B, n)`` integer). The same values as ``torch.einsum("bk,bnk->bn",
    u, table[idx])`` and ``table[idx].pow(2).sum(2)`` within float rounding (sums in
    another order); float32 and float64 CPU tensors take the kernels."""
    kernels = u.device.type == "cpu" and table.device.type == "cpu"
    if not kernels or u.dtype not in (torch.float32, torch.float64) or table.dtype != u.dtype:
        rows = table[idx]
        return torch.einsum("bk,bnk->bn", u, rows), rows.pow(2).sum(2)
    return _GatheredScores.apply(u, table, idx)


class _GatheredScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, table, idx):
        u, table = u.detach().contiguous(), table.detach().contiguous()
        idx = idx.contiguous()
        if idx.dtype not in (torch.int32, torch.int64):
            idx = idx.long()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= table.shape[0]):
            raise IndexError(f"gathered_scores: indices must be in [0, {table.shape[0]})")
        dots = torch.empty(idx.shape, dtype=u.dtype)
        squares = torch.empty(idx.shape, dtype=u.dtype)
        if idx.numel():
            _forward(u.numpy(), table.numpy(), idx.numpy(), dots.numpy(), squares.numpy())
        ctx.save_for_backward(u, table, idx)
        ctx.set_materialize_grads(False)
        return dots, squares

    @staticmethod
    def backward(ctx, g_dots, g_squares):
        u, table, idx = ctx.saved_tensors
        zeros = np.zeros((0, 0), dtype=u.numpy().dtype)
        gd = zeros if g_dots is None else g_dots.to(u.dtype).contiguous().numpy()
        gs = zeros if g_squares is None else g_squares.to(u.dtype).contiguous().numpy()
        grad_u = grad_table = None
        if ctx.needs_input_grad[0]:
            grad_u = torch.zeros_like(u)
            if g_dots is not None and idx.numel():
                _grad_rows(gd, table.numpy(), idx.numpy(), grad_u.numpy())
        if ctx.needs_input_grad[1]:
            grad_table = torch.zeros_like(table)
            if idx.numel() and (g_dots is not None or g_squares is not None):
                parts = max(1, min(get_num_threads(), table.shape[0]))
                _grad_table(
                    gd, gs, u.numpy(), table.numpy(), idx.numpy(), grad_table.numpy(), parts
                )
        return grad_u, grad_table, None


@njit(parallel=True, fastmath=True, cache=True)
def _forward(u, table, idx, dots, squares):
    """dots[b, t] = u[b] . table[idx[b, t]]; squares[b, t] = |table[idx[b, t]]|^2."""
    n_rows, n = idx.shape
    k = u.shape[1]
    for b in prange(n_rows):
        for t in range(n):
            j = idx[b, t]
            s = u.dtype.type(0)
            q = u.dtype.type(0)
            for c in range(k):
                e = table[j, c]
                s += u[b, c] * e
                q += e * e
            dots[b, t] = s
            squares[b, t] = q


@njit(parallel=True, fastmath=True, cache=True)
def _grad_rows(g_dots, table, idx, grad_u):
    """grad_u[b] = sum_t g_dots[b, t] table[idx[b, t]] (rows of ``u``: no two threads meet)."""
    n_rows, n = idx.shape
    k = table.shape[1]
    for b in prange(n_rows):
        for t in range(n):
            g = g_dots[b, t]
            j = idx[b, t]
            for c in range(k):
                grad_u[b, c] += g * table[j, c]


@njit(parallel=True, fastmath=True, cache=True)
def _grad_table(g_dots, g_squares, u, table, idx, grad_table, parts):
    """grad_table[j] += g_dots[b, t] u[b] + 2 g_squares[b, t] table[j] over (b, t) with
    idx[b, t] = j. The table's rows are cut into ``parts`` ranges, one per thread; each thread
    reads every entry and adds only those in its range, so no two threads write one row.
    Empty ``g_dots`` / ``g_squares`` (shape (0, 0)): that term is zero."""
    n_rows, n = idx.shape
    k = table.shape[1]
    n_table = table.shape[0]
    with_dots = g_dots.shape[0] > 0
    with_squares = g_squares.shape[0] > 0
    for p in prange(parts):
        lo = n_table * p // parts
        hi = n_table * (p + 1) // parts
        for b in range(n_rows):
            for t in range(n):
                j = idx[b, t]
                if j < lo or j >= hi:
                    continue
                gd = g_dots[b, t] if with_dots else u.dtype.type(0)
                gs = 2 * g_squares[b, t] if with_squares else u.dtype.type(0)
                for c in range(k):
                    grad_table[j, c] += gd * u[b, c] + gs * table[j, c]
