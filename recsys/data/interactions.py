"""The ``Interactions`` value type: users x items strengths with external-id maps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import DataFormatError, UnknownIdError


@dataclass(frozen=True, eq=False)
class Interactions:
    """Implicit feedback of ``n_users`` users on ``n_items`` items.

    Attributes:
        matrix: ``(n_users, n_items)`` CSR of float32 raw strengths (views, plays, ratings...),
            canonical: sorted column indices, no duplicates, no explicit zeros.
        user_ids: ``(n_users,)`` external user ids; ``user_ids[u]`` is row ``u``'s id.
        item_ids: ``(n_items,)`` external item ids; ``item_ids[i]`` is column ``i``'s id.
        timestamps: ``(nnz,)`` int64 unix seconds aligned with ``matrix.data`` (the first time
            each pair was seen), or None.
        features: named ``(nnz,)`` float arrays aligned with ``matrix.data``, describing each
            pair beyond its strength (e.g. ``dwell`` seconds, ``visits``, ``type:like`` counts
            from an event log); confidence models may use them. Empty for most datasets.

    The id maps are kept when a subset is taken (e.g. by a split), so every part of a split has
    the same shape and indices, and they travel with a trained model into its checkpoint.
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray | None = None
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.matrix
        if m.shape != (len(self.user_ids), len(self.item_ids)):
            raise ValueError(
                f"matrix shape {m.shape} does not match {len(self.user_ids)} user ids and "
                f"{len(self.item_ids)} item ids"
            )
        if self.timestamps is not None and len(self.timestamps) != m.nnz:
            raise ValueError("timestamps must align with matrix.data")
        for name, values in self.features.items():
            if len(values) != m.nnz:
                raise ValueError(f"feature {name!r} must align with matrix.data")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        strengths: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        user_ids: np.ndarray | None = None,
        item_ids: np.ndarray | None = None,
        features: dict[str, np.ndarray] | None = None,
    ) -> Interactions:
        """Build from parallel arrays of external user and item ids.

        Repeated (user, item) pairs are merged: strengths and features are summed and the
        earliest timestamp is kept. Ids are sorted (``np.unique`` order) unless ``user_ids`` /
        ``item_ids`` give the full catalogue, in which case every id must be in it.
        Pairs with a strength <= 0 are kept out of the matrix (they carry no positive signal).
        """
        users = np.asarray(users)
        items = np.asarray(items)
        n = len(users)
        if len(items) != n:
            raise ValueError("users and items must have the same length")
        strengths = np.ones(n, dtype=np.float32) if strengths is None else _strengths(strengths)
        rows = None
        if user_ids is None and in_order([users]):  # e.g. aggregated events: no sort needed
            first = np.ones(n, dtype=bool)
            first[1:] = users[1:] != users[:-1]
            user_ids, rows = users[first], np.cumsum(first) - 1
        user_ids = np.unique(users) if user_ids is None else np.asarray(user_ids)
        item_ids = np.unique(items) if item_ids is None else np.asarray(item_ids)
        rows = _index_of(user_ids, users, "user") if rows is None else rows
        cols = _index_of(item_ids, items, "item")
        keep = strengths > 0
        rows, cols, strengths = rows[keep], cols[keep], strengths[keep]
        ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)[keep]
        feats = {k: np.asarray(v, dtype=np.float64)[keep] for k, v in (features or {}).items()}

        if not in_order([rows, cols]):  # (a stable sort would keep them as they are)
            order = np.lexsort((cols, rows))
            rows, cols, strengths = rows[order], cols[order], strengths[order]
            if ts is not None:
                ts = ts[order]
            feats = {k: v[order] for k, v in feats.items()}
        new_pair = np.ones(len(rows), dtype=bool)
        new_pair[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        starts = np.flatnonzero(new_pair)
        if len(starts) < len(rows):  # merge repeated pairs
            strengths = _strengths(np.add.reduceat(strengths.astype(np.float64), starts),
                                   "the sum of a repeated pair's strengths")  # fmt: skip
            if ts is not None:
                ts = np.minimum.reduceat(ts, starts)
            feats = {k: np.add.reduceat(v, starts) for k, v in feats.items()}
            rows, cols = rows[starts], cols[starts]
        indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(user_ids)), out=indptr[1:])
        matrix = sp.csr_matrix(
            (strengths, cols.astype(np.int32), indptr), shape=(len(user_ids), len(item_ids))
        )
        return cls(matrix, user_ids, item_ids, ts, feats)

    # -- views ----------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    def rows(self) -> np.ndarray:
        """``(nnz,)`` user index of each stored entry, aligned with ``matrix.data``."""
        return np.repeat(np.arange(self.n_users), np.diff(self.matrix.indptr))

    def subset(self, mask: np.ndarray) -> Interactions:
        """The interactions whose entries are selected by the boolean ``(nnz,)`` mask.

        Shape and id maps are unchanged.
        """
        m = self.matrix
        rows = self.rows()[mask]
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_users), out=indptr[1:])
        matrix = sp.csr_matrix(
            (m.data[mask], m.indices[mask], indptr), shape=m.shape, dtype=np.float32
        )
        ts = None if self.timestamps is None else self.timestamps[mask]
        feats = {k: v[mask] for k, v in self.features.items()}
        return Interactions(matrix, self.user_ids, self.item_ids, ts, feats)

    def compact(self) -> Interactions:
        """The same interactions without users and items that have none (ids re-indexed)."""
        m = self.matrix
        users = np.flatnonzero(np.diff(m.indptr) > 0)
        items = np.flatnonzero(np.bincount(m.indices, minlength=self.n_items) > 0)
        if len(users) == self.n_users and len(items) == self.n_items:
            return self
        new_col = np.full(self.n_items, -1, dtype=np.int64)
        new_col[items] = np.arange(len(items))
        sub = m[users]
        matrix = sp.csr_matrix(
            (sub.data, new_col[sub.indices].astype(np.int32), sub.indptr),
            shape=(len(users), len(items)),
        )
        keep = np.repeat(np.isin(np.arange(self.n_users), users), np.diff(m.indptr))
        ts = None if self.timestamps is None else self.timestamps[keep]
        feats = {k: v[keep] for k, v in self.features.items()}
        return Interactions(matrix, self.user_ids[users], self.item_ids[items], ts, feats)

    def user_index(self, ids) -> np.ndarray:
        """Row indices of external user ids; raises UnknownIdError naming the unknown ones."""
        return _index_of(self.user_ids, np.asarray(ids), "user")

    def item_index(self, ids) -> np.ndarray:
        """Column indices of external item ids; raises UnknownIdError naming the unknown ones."""
        return _index_of(self.item_ids, np.asarray(ids), "item")

    def __repr__(self) -> str:
        return (
            f"Interactions({self.n_users} users x {self.n_items} items, {self.nnz} nonzeros, "
            f"timestamps={'yes' if self.timestamps is not None else 'no'})"
        )


def same_ids(theirs, ours) -> bool:
    """Whether two id maps (a model's list, a dataset's array) hold the same ids in order."""
    return len(theirs) == len(ours) and not np.any(np.asarray(theirs) != np.asarray(ours))


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _strengths(values, what: str = "a strength") -> np.ndarray:
    """``values`` as float32, or a DataFormatError for a value that is not finite or does not
    fit float32 (1e39 would become inf: an infinite loss in every epoch)."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{what} is {values[i]!r} (entry {i}): strengths must be finite numbers below "
            f"{FLOAT32_MAX:.3g} (float32); fix or drop those rows"
        )
    return values.astype(np.float32)


def row_entries(
    matrix: sp.csr_matrix, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored entries of ``matrix[rows]`` as ``(local_row, col, value)`` arrays, local_row
    being the position in ``rows`` (ascending), col int64."""
    sub = matrix[rows]
    local = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
    return local, sub.indices.astype(np.int64), sub.data


def in_order(columns: list[np.ndarray]) -> bool:
    """Are the rows already in ascending order of ``columns`` (the first column first,
    repeats allowed), as a stable sort by them would leave them? False where a value is
    missing or values do not compare (a sort decides those)."""
    if len(columns[0]) < 2:
        return True
    tied = np.ones(len(columns[0]) - 1, dtype=bool)
    try:
        for values in columns:
            if values.dtype.kind == "f" and np.isnan(values).any():
                return False
            if values.dtype == object and pd.isna(values).any():
                return False
            before, after = values[:-1], values[1:]
            if (tied & (after < before)).any():
                return False
            tied &= after == before
    except TypeError:
        return False
    return True


def _index_of(catalogue: np.ndarray, ids: np.ndarray, kind: str) -> np.ndarray:
    """Positions of ``ids`` in ``catalogue`` (int64); every id must be present."""
    index = pd.Index(catalogue)
    if not index.is_unique:
        raise ValueError(f"{kind} ids must be unique")
    pos = index.get_indexer(ids)
    if (pos < 0).any():
        missing = pd.unique(np.asarray(ids)[pos < 0])
        shown = ", ".join(map(repr, missing[:10].tolist()))
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise UnknownIdError(f"unknown {kind} id(s): {shown}{more}")
    return pos.astype(np.int64)
