"""When each item became available: publication times, for recency baselines and replay."""

from __future__ import annotations

import numpy as np

from recsys.errors import RecsysError


def publication_times(dataset, split) -> np.ndarray:
    """``(n_items,)`` float64 unix seconds at which each item (column) became available.

    The dataset's own ``item_published(item_ids)`` where it has one (``publisher_sim``, an
    event log's item table);
    otherwise each item's first interaction anywhere in the data (training, validation and
    test parts alike: a stand-in for the publication date a site knows in advance). Items
    with no timed interaction get -inf (always available)."""
    item_ids = split.train.item_ids
    own = dataset.item_published(item_ids) if hasattr(dataset, "item_published") else None
    if own is not None:
        return np.asarray(own, dtype=np.float64)
    parts = [p for p in (split.train, split.val, split.test, split.fold_in) if p is not None]
    if any(p.nnz and p.timestamps is None for p in parts):
        name = getattr(dataset, "name", type(dataset).__name__)
        raise RecsysError(
            f"dataset {name} has no timestamps and no item publication times, so items "
            "cannot be ordered by recency (model=most_recent, recsys-replay need one of them)"
        )
    first = np.full(len(item_ids), np.inf)
    for p in parts:
        if p.nnz:
            np.minimum.at(first, p.matrix.indices, np.asarray(p.timestamps, dtype=np.float64))
    first[np.isinf(first)] = -np.inf
    return first


def recency_days(published: np.ndarray) -> np.ndarray:
    """``(n_items,)`` float32 scores that order items by ``published``, latest highest: days
    since the earliest finite time; -1 for items with none (ranked after every other)."""
    finite = np.isfinite(published)
    origin = published[finite].min() if finite.any() else 0.0
    return np.where(finite, (published - origin) / 86_400.0, -1.0).astype(np.float32)
