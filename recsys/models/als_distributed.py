"""ALS half-steps sharded across processes with torch.distributed (gloo on CPU, NCCL on GPU).

Each process holds the whole confidence matrix and both factor tables. In a half-step, rank
r solves the rows of its share (contiguous ranges holding about nnz / world entries each,
``nnz_balanced_bounds``), the Gramian of the fixed factors is all-reduced from per-rank
partial sums, and the solved blocks are all-gathered so that every rank ends the half-step
with the same factors, as Spark MLlib's blocked ALS does across machines.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist

from recsys.models.als_solvers import TorchCSR


def distributed_world() -> int:
    """Processes in the default group (1 when torch.distributed is not initialized)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def nnz_balanced_bounds(indptr: np.ndarray, parts: int) -> np.ndarray:
    """``(parts + 1,)`` row boundaries of ``parts`` contiguous row ranges of a CSR with row
    pointer ``indptr``, each holding about nnz / parts stored entries (not rows)."""
    n = len(indptr) - 1
    targets = indptr[-1] * np.arange(1, parts) / parts
    cuts = np.searchsorted(indptr, targets, side="left")
    bounds = np.concatenate([[0], np.clip(cuts, 0, n), [n]]).astype(np.int64)
    return np.maximum.accumulate(bounds)


def sharded_solve(
    solve: Callable[
        [TorchCSR, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
    ],
    csr: TorchCSR,
    other: torch.Tensor,
    current: torch.Tensor,
    reg: torch.Tensor,
) -> None:
    """One half-step across the processes: ``current`` ``(n_rows, k)`` gets every row's new
    factors. ``solve(csr_part, other, current_part, reg_part, gram)`` solves one share of rows
    given the all-reduced Gramian ``other^T other`` and returns its ``(rows, k)`` factors."""
    world, rank = dist.get_world_size(), dist.get_rank()
    bounds = nnz_balanced_bounds(csr.indptr_cpu, world)
    split = np.linspace(0, other.shape[0], world + 1).astype(np.int64)
    part = other[split[rank] : split[rank + 1]]
    gram = part.T @ part
    dist.all_reduce(gram)
    lo, hi = int(bounds[rank]), int(bounds[rank + 1])
    block = solve(csr.row_slice(lo, hi), other, current[lo:hi], reg[lo:hi], gram)
    size = int(np.diff(bounds).max())
    padded = torch.zeros((size, current.shape[1]), dtype=current.dtype, device=current.device)
    padded[: hi - lo] = block
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    for r in range(world):
        current[bounds[r] : bounds[r + 1]] = gathered[r][: bounds[r + 1] - bounds[r]]
