"""Top-k with excluded items on the CPU in one pass over the scores (numba; rows over threads).

The same result as ``ranking.topk`` after setting the excluded entries to ``-inf``: items by
score descending, ties by item index ascending; slots a row cannot fill (fewer than k items
with a score above ``-inf``) hold index -1 and ``-inf``. The scores are only read: no copy,
no masked write, no float top-(k+1) followed by a sort. Each row is scanned once in item
order, keeping its k best so far; an item enters only when its score beats the k-th best,
and only then is it looked up among the row's excluded items (sorted, binary search). The
scan goes by chunks of ``CHUNK`` scores: one vectorized count per chunk of the scores that
beat the k-th best or are NaN, and the chunk is walked item by item only when there is one.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

CHUNK = 64  # scores per chunk: one vectorized test, walked item by item only when needed


@njit(parallel=True, cache=True, nogil=True)
def _topk_rows(scores, ex_indptr, ex_cols, k, items, values, nan):
    n_rows, n = scores.shape
    for r in prange(n_rows):
        excluded = np.sort(ex_cols[ex_indptr[r] : ex_indptr[r + 1]])
        idx = items[r]
        val = values[r]
        for j in range(k):
            idx[j] = -1
            val[j] = -np.inf
        kth = -np.inf
        for lo in range(0, n, CHUNK):
            chunk = scores[r, lo : lo + CHUNK]  # a slice: its loop vectorizes
            hits = 0
            for i in range(chunk.shape[0]):
                s = chunk[i]
                if s > kth or s != s:
                    hits += 1
            if hits == 0:  # nothing here beats the k-th best, no NaN
                continue
            for c in range(chunk.shape[0]):
                s = chunk[c]
                i = lo + c
                if s > kth:
                    p = np.searchsorted(excluded, i)
                    if p < len(excluded) and excluded[p] == i:
                        continue
                    j = k - 1
                    while j > 0 and val[j - 1] < s:  # equal scores keep the earlier item first
                        val[j] = val[j - 1]
                        idx[j] = idx[j - 1]
                        j -= 1
                    val[j] = s
                    idx[j] = i
                    kth = val[k - 1]
                elif s != s:  # NaN on an item that is not excluded
                    p = np.searchsorted(excluded, i)
                    if not (p < len(excluded) and excluded[p] == i):
                        nan[r] = True


def topk_excluding(
    scores: torch.Tensor, exclude_rows: torch.Tensor, exclude_cols: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k best items of each row of ``scores`` ``(B, n_items)`` (float32, CPU), leaving
    out the entries ``(exclude_rows[j], exclude_cols[j])`` (in any order).

    Returns ``(items, values, valid)``: ``(B, k)`` int64 item indices (-1 where ``valid`` is
    False), their float32 scores, and the bool mask of filled slots. Raises
    FloatingPointError when a score that is not excluded is NaN (as ``ranking.topk``)."""
    b, n = scores.shape
    k = min(k, n)
    s = scores.detach().contiguous().numpy()
    rows, cols = exclude_rows.numpy(), exclude_cols.numpy()
    if len(rows) > 1 and (np.diff(rows) < 0).any():  # group the entries by row
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
    indptr = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=b), out=indptr[1:])
    items = np.empty((b, k), dtype=np.int64)
    values = np.empty((b, k), dtype=np.float32)
    nan = np.zeros(b, dtype=np.bool_)
    _topk_rows(s, indptr, cols.astype(np.int64, copy=False), k, items, values, nan)
    if nan.any():
        raise FloatingPointError("the model produced NaN scores")
    items_t = torch.from_numpy(items)
    return items_t, torch.from_numpy(values), items_t >= 0
