"""CPU kernels of pair sampling: is an item among a user's training items?"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(fastmath=True, cache=True, nogil=True)
def in_sorted(items: np.ndarray, lo: int, hi: int, j: int) -> bool:
    """Is ``j`` among the sorted ``items[lo:hi]``? (binary search)"""
    end = hi
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and items[lo] == j


@njit(parallel=True, cache=True)
def seen_in_rows(
    indptr: np.ndarray, items: np.ndarray, users: np.ndarray, query: np.ndarray
) -> np.ndarray:
    """Bool ``(n,)``: is ``query[t]`` a training item of ``users[t]``? The training matrix
    is CSR (``indptr``, ``items`` sorted within each row); each lookup is a binary search of
    the user's own row instead of all the training pairs."""
    out = np.empty(len(users), dtype=np.bool_)
    for t in prange(len(users)):
        u = users[t]
        out[t] = in_sorted(items, indptr[u], indptr[u + 1], query[t])
    return out


@njit(parallel=True, cache=True)
def unmask_seen(
    indptr: np.ndarray,
    items: np.ndarray,
    users: np.ndarray,
    negatives: np.ndarray,
    slot: np.ndarray,
    mask: np.ndarray,
) -> None:
    """Set ``mask[r, s]`` False where ``negatives[s]`` is a training item of ``users[r]``
    (``negatives`` distinct, ``slot[negatives[s]] = s`` and -1 for every other item). Each
    pair takes the cheaper way: walk the user's row and look each item's slot up (row length
    steps), or search the row for each negative (S log2(row length) steps)."""
    n_negatives = len(negatives)
    for r in prange(len(users)):
        u = users[r]
        lo, hi = indptr[u], indptr[u + 1]
        length = hi - lo
        steps = 1
        while (1 << steps) < length:
            steps += 1
        if length <= n_negatives * steps:
            for t in range(lo, hi):
                s = slot[items[t]]
                if s >= 0:
                    mask[r, s] = False
        else:
            for s in range(n_negatives):
                if in_sorted(items, lo, hi, negatives[s]):
                    mask[r, s] = False
