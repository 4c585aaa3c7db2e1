"""The CPU kernel of BPR's ``hogwild`` optimizer: per-triple SGD on all threads, lock-free.

Triples (a training pair, drawn uniformly, and a negative item) are drawn in chunks, each
from its own seeded generator; every thread takes chunks as it comes free and applies, for
one triple at a time, the SGD step of ``bpr.bpr_loss`` on that triple, without locks
(Hogwild, Recht et al. 2011; the scheme of implicit's BPR). The triples drawn depend on the
seed only; with one thread so does the result, with more, concurrent updates make runs
differ slightly.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, parallel_chunksize, prange

from recsys.models.sampling_cpu import in_sorted

CHUNK = 1 << 16  # triples per chunk of work


@njit(cache=True, nogil=True)
def _below(r: np.uint64, n: int) -> np.int64:
    """An integer in [0, n) from the 32 random bits ``r`` (Lemire's multiply-shift)."""
    return np.int64((r * np.uint64(n)) >> np.uint64(32))


@njit(fastmath=True, cache=True, nogil=True)
def _steps(pairs, tables, rate, two_reg, n, reject_seen, popular, seed):
    """``n`` triples' steps on one thread (see ``sgd_epoch``): (summed loss, skipped).
    Random numbers: xorshift64* seeded by ``seed``, its high and low 32 bits per triple."""
    users, items, indptr = pairs
    user_emb, item_emb, item_bias = tables
    nnz = users.shape[0]
    n_items, k = item_emb.shape
    with_bias = item_bias.shape[0] > 0
    loss = 0.0
    skipped = 0
    state = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(1)
    low = np.uint64(0xFFFFFFFF)
    for _ in range(n):
        state ^= state >> np.uint64(12)
        state ^= state << np.uint64(25)
        state ^= state >> np.uint64(27)
        r = state * np.uint64(0x2545F4914F6CDD1D)
        pair = _below(r >> np.uint64(32), nnz)
        u = np.int64(users[pair])
        i = np.int64(items[pair])
        j = np.int64(items[_below(r & low, nnz)]) if popular else _below(r & low, n_items)
        if reject_seen and in_sorted(items, indptr[u], indptr[u + 1], j):
            skipped += 1
            continue
        x = np.float32(0.0)
        for f in range(k):
            x += user_emb[u, f] * (item_emb[i, f] - item_emb[j, f])
        if with_bias:
            x += item_bias[i] - item_bias[j]
        if x > -30.0:  # z = sigmoid(-x) = e / (1 + e), loss = log(1 + e), e = exp(-x)
            e = np.exp(-x)
            z = e / (np.float32(1.0) + e)
            loss += np.log1p(e)
        else:
            z = np.float32(1.0)
            loss -= x
        for f in range(k):
            uf = user_emb[u, f]
            pf = item_emb[i, f]
            nf = item_emb[j, f]
            user_emb[u, f] = uf + rate * (z * (pf - nf) - two_reg * uf)
            item_emb[i, f] = pf + rate * (z * uf - two_reg * pf)
            item_emb[j, f] = nf + rate * (-z * uf - two_reg * nf)
        if with_bias:
            bi = item_bias[i]
            bj = item_bias[j]
            item_bias[i] = bi + rate * (z - two_reg * bi)
            item_bias[j] = bj + rate * (-z - two_reg * bj)
    return loss, skipped


def sgd_epoch(
    users: np.ndarray,
    items: np.ndarray,
    indptr: np.ndarray,
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    item_bias: np.ndarray,
    lr: float,
    regularization: float,
    n_samples: int,
    reject_seen: bool,
    seed: int,
    popularity_negatives: bool = False,
) -> tuple[float, int]:
    """``n_samples`` SGD steps on single triples, updating the tables in place.

    ``users, items`` ``(nnz,)`` the training pairs in CSR order (``items`` sorted within each
    user, ``indptr`` ``(n_users + 1,)`` their row starts); ``user_emb`` ``(n_users, k)``,
    ``item_emb`` ``(n_items, k)``, ``item_bias`` ``(n_items,)`` or empty; float32. For a
    triple (u, i, j) with x = u.(i - j) + b_i - b_j and z = sigmoid(-x), the step is the
    gradient of -log sigmoid(x) + regularization (|u|^2 + |i|^2 + |j|^2 + b_i^2 + b_j^2):

        u += lr (z (i - j) - 2 reg u),  i += lr (z u - 2 reg i),  j += lr (-z u - 2 reg j),
        b_i += lr (z - 2 reg b_i),      b_j += lr (-z - 2 reg b_j).

    Negatives are uniform over items, or with ``popularity_negatives`` the item of a
    uniformly drawn training pair (in proportion to popularity, as implicit draws them).
    A negative the user has (``reject_seen``) skips the triple. The samples run in chunks
    of about ``CHUNK``, chunk t drawn from a generator seeded ``seed + t``, handed to the
    threads as they come free (so the triples drawn do not depend on the thread count; a
    busy core does not hold the epoch back). Index arrays may be int32 or int64 (int32:
    less memory traffic, faster). Returns the summed loss (ranking term, before each step)
    of the triples taken and the number skipped.
    """
    if max(users.shape[0], item_emb.shape[0]) >= 2**32:
        raise ValueError("hogwild BPR draws 32-bit indices: at most 2^32 pairs and items")
    n_chunks = max(get_num_threads(), -(-n_samples // CHUNK))
    with parallel_chunksize(1):  # one chunk at a time to whichever thread is free
        return _parallel_epoch(
            (users, items, indptr),
            (user_emb, item_emb, item_bias),
            np.float32(lr),
            np.float32(2.0 * regularization),
            n_samples,
            reject_seen,
            popularity_negatives,
            seed,
            n_chunks,
        )


@njit(parallel=True, cache=True, nogil=True)
def _parallel_epoch(pairs, tables, rate, two_reg, n_samples, reject_seen, popular, seed, n_chunks):
    """``sgd_epoch`` in ``n_chunks`` chunks of the samples, chunk t seeded ``seed + t``."""
    per_chunk = (n_samples + n_chunks - 1) // n_chunks
    losses = np.zeros(n_chunks)
    skips = np.zeros(n_chunks, dtype=np.int64)
    for t in prange(n_chunks):
        n = max(0, min(per_chunk, n_samples - t * per_chunk))
        losses[t], skips[t] = _steps(
            pairs, tables, rate, two_reg, n, reject_seen, popular, seed + t
        )
    return losses.sum(), skips.sum()
