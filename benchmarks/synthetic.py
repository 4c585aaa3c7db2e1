"""A seeded synthetic implicit-feedback matrix for benchmarks, generated in seconds."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def synthetic_matrix(
    n_users: int = 100_000,
    n_items: int = 20_000,
    nnz: int = 5_000_000,
    zipf: float = 1.0,
    seed: int = 0,
) -> sp.csr_matrix:
    """``(n_users, n_items)`` binary float32 CSR with exactly ``nnz`` distinct pairs.

    Item popularity is Zipf-like, p_i ~ (rank_i + 10)^-zipf over shuffled ranks; user activity
    is log-normal (sigma 1); pairs are drawn independently from the product of the two and
    duplicates are dropped, drawing again until ``nnz`` distinct pairs exist.
    """
    if nnz > n_users * n_items // 2:
        raise ValueError(f"nnz={nnz} is more than half of {n_users} x {n_items}")
    rng = np.random.default_rng(seed)
    item_p = (np.arange(n_items) + 10.0) ** -zipf
    item_p = rng.permutation(item_p / item_p.sum())
    user_p = rng.lognormal(0.0, 1.0, n_users)
    user_p /= user_p.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < nnz:
        draw = int((nnz - len(keys)) * 1.1) + 1000
        u = rng.choice(n_users, draw, p=user_p)
        i = rng.choice(n_items, draw, p=item_p)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
    keys = np.sort(rng.choice(keys, nnz, replace=False))
    rows, cols = np.divmod(keys, n_items)
    data = np.ones(nnz, dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(n_users, n_items))
