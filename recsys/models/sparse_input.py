"""A linear layer read by sparse rows: ``x @ W.T`` for B sparse rows x of width N and a
weight W ``(H, N)`` (``nn.Linear``'s layout), touching only the rows' entries.

An autoencoder's first layer reads users' item rows, of which a few dozen of tens of
thousands of entries are not zero: the dense product costs B N H multiply-adds forward and
as many for the weight's gradient; this costs nnz H each way (numba kernels on the CPU), and
writes the weight's gradient in W's own layout (no transposed copy).
"""

from __future__ import annotations

import torch
from numba import njit, prange


def sparse_rows_linear(
    indptr: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """``(B, H)``: out[b] = sum over t in indptr[b] .. indptr[b + 1] - 1 of values[t]
    weight[:, cols[t]], i.e. ``x @ weight.T`` for the CSR rows x (``indptr`` ``(B + 1,)``,
    ``cols`` and ``values`` ``(nnz,)``) and ``weight`` ``(H, N)``; differentiable in
    ``weight`` (not in ``values``). CPU tensors of one float dtype."""
    if values.dtype != weight.dtype or weight.device.type != "cpu":
        raise ValueError("sparse_rows_linear takes CPU tensors of one float dtype")
    if len(cols) and (int(cols.min()) < 0 or int(cols.max()) >= weight.shape[1]):
        raise IndexError(f"sparse_rows_linear: columns must be in [0, {weight.shape[1]})")
    return _SparseRowsLinear.apply(indptr, cols, values, weight)


class _SparseRowsLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, indptr, cols, values, weight):
        indptr, cols = indptr.contiguous().long(), cols.contiguous().long()
        values, w = values.detach().contiguous(), weight.detach().contiguous()
        out_t = torch.empty((w.shape[0], len(indptr) - 1), dtype=w.dtype)
        _forward(indptr.numpy(), cols.numpy(), values.numpy(), w.numpy(), out_t.numpy())
        ctx.save_for_backward(indptr, cols, values)
        ctx.weight_shape = w.shape
        return out_t.T.contiguous()

    @staticmethod
    def backward(ctx, grad_out):
        indptr, cols, values = ctx.saved_tensors
        grad_w = None
        if ctx.needs_input_grad[3]:
            g_t = grad_out.to(values.dtype).T.contiguous()  # (H, B)
            grad_w = torch.zeros(ctx.weight_shape, dtype=values.dtype)
            _grad_weight(indptr.numpy(), cols.numpy(), values.numpy(), g_t.numpy(), grad_w.numpy())
        return None, None, None, grad_w


@njit(parallel=True, fastmath=True, cache=True)
def _forward(indptr, cols, values, w, out_t):
    """out_t[h, b] = sum_t values[t] w[h, cols[t]] over row b's entries t; a thread per h."""
    n_rows = len(indptr) - 1
    for h in prange(w.shape[0]):
        for b in range(n_rows):
            s = w.dtype.type(0)
            for t in range(indptr[b], indptr[b + 1]):
                s += values[t] * w[h, cols[t]]
            out_t[h, b] = s


@njit(parallel=True, fastmath=True, cache=True)
def _grad_weight(indptr, cols, values, g_t, grad_w):
    """grad_w[h, cols[t]] += g_t[h, b] values[t] over the entries t of each row b; a thread
    per h, so that no two threads write one row of grad_w."""
    n_rows = len(indptr) - 1
    for h in prange(grad_w.shape[0]):
        for b in range(n_rows):
            g = g_t[h, b]
            for t in range(indptr[b], indptr[b + 1]):
                grad_w[h, cols[t]] += g * values[t]


def csr_batch(
    rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indptr, cols)`` of the binary ``(n_rows, n_cols)`` matrix with ones at (rows,
    cols): entries sorted by row, then column, a repeated entry once (as ``x[rows, cols] =
    1`` sets it once)."""
    keys = torch.unique(rows.long() * n_cols + cols.long())  # sorted
    return indptr_of(keys // n_cols, n_rows), keys % n_cols


def indptr_of(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """The CSR ``indptr`` ``(n_rows + 1,)`` of entries whose rows ``rows`` are sorted."""
    indptr = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=n_rows), 0, out=indptr[1:])
    return indptr


def row_of_entries(indptr: torch.Tensor) -> torch.Tensor:
    """The row of each entry of a CSR matrix, ``(nnz,)``."""
    counts = indptr[1:] - indptr[:-1]
    return torch.repeat_interleave(torch.arange(len(counts), device=indptr.device), counts)
