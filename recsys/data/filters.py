"""Filtering of interactions before splitting (``filter/`` config group)."""

from __future__ import annotations

import logging

import numpy as np

from recsys.data.interactions import Interactions
from recsys.errors import EmptyDataError

log = logging.getLogger(__name__)


class NoFilter:
    """Keeps everything."""

    name = "none"

    def __call__(self, data: Interactions) -> Interactions:
        return data


class KCore:
    """Iterative k-core: drop users with fewer than ``min_user`` interactions and items with
    fewer than ``min_item``, repeatedly, until every remaining user and item has enough.
    Dropped users and items leave the id maps; the counts are logged."""

    name = "kcore"

    def __init__(self, min_user: int = 5, min_item: int = 5) -> None:
        self.min_user, self.min_item = int(min_user), int(min_item)

    def __call__(self, data: Interactions) -> Interactions:
        keep = np.ones(data.nnz, dtype=bool)
        rows, cols = data.rows(), data.matrix.indices
        rounds = 0
        while True:
            rounds += 1
            n_u = np.bincount(rows[keep], minlength=data.n_users)
            n_i = np.bincount(cols[keep], minlength=data.n_items)
            bad = keep & ((n_u[rows] < self.min_user) | (n_i[cols] < self.min_item))
            if not bad.any():
                break
            keep &= ~bad
        what = f"k-core (users >= {self.min_user}, items >= {self.min_item}) after {rounds} rounds"
        return _keep(data, keep, what, "k-core filtering", self)


class MinCounts:
    """One pass each, as Liang et al. (2018) preprocess ML-20M and the Million Song Dataset:
    first drop items with fewer than ``min_item`` users, then users with fewer than
    ``min_user`` remaining items (unlike ``KCore``, not repeated: an item may end below
    ``min_item`` after the user pass)."""

    name = "min_counts"

    def __init__(self, min_user: int = 5, min_item: int = 0) -> None:
        self.min_user, self.min_item = int(min_user), int(min_item)

    def __call__(self, data: Interactions) -> Interactions:
        rows, cols = data.rows(), data.matrix.indices
        keep = np.bincount(cols, minlength=data.n_items)[cols] >= self.min_item
        keep &= np.bincount(rows[keep], minlength=data.n_users)[rows] >= self.min_user
        what = f"min counts (items >= {self.min_item} users, then users >= {self.min_user} items)"
        return _keep(data, keep, what, "min counts filtering", self)


def _keep(data: Interactions, keep: np.ndarray, what: str, name: str, f) -> Interactions:
    """The kept interactions, compacted, with what was dropped in the log; an error naming
    the thresholds when nothing is left."""
    out = data.subset(keep).compact()
    log.info(
        "%s: %d -> %d users, %d -> %d items, %d -> %d interactions",
        what,
        data.n_users,
        out.n_users,
        data.n_items,
        out.n_items,
        data.nnz,
        out.nnz,
    )
    if out.nnz == 0:
        raise EmptyDataError(
            f"{name} (min_user={f.min_user}, min_item={f.min_item}) left no interactions; "
            "lower the thresholds"
        )
    return out
