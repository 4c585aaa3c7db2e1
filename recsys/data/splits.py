"""Train / validation / test splits of Interactions. Every pair lands in exactly one part."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.data.interactions import Interactions
from recsys.errors import EmptyDataError, RecsysError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Disjoint parts of one Interactions, with the same shape and id maps.

    ``fold_in`` is set by splits with held-out users (strong generalization): those users'
    known history, given to the model at evaluation time; their ``val`` / ``test`` rows are
    the items to find. Otherwise None: evaluated users are training users.

    ``test_candidates``, when set, are the only items each user's test ranking runs over
    (e.g. the items of coat's random test set a user rated); None: all items.
    """

    train: Interactions
    val: Interactions
    test: Interactions
    fold_in: Interactions | None = None
    test_candidates: Interactions | None = None

    def check(self, name: str, expect_val: bool = True) -> Split:
        """Raise EmptyDataError if training or test is empty; warn if validation is."""
        for part in ("train", "test"):
            if getattr(self, part).nnz == 0:
                raise EmptyDataError(
                    f"split '{name}' left no {part} interactions "
                    f"(train={self.train.nnz}, val={self.val.nnz}, test={self.test.nnz}); "
                    "change the split's ratios or use a larger dataset"
                )
        if self.val.nnz == 0 and expect_val:
            log.warning("split '%s' has no validation interactions", name)
        return self


def _ratio(name: str, value: float) -> float:
    if not 0 <= value < 1:
        raise RecsysError(f"split {name} must be in [0, 1), got {value}")
    return float(value)


def _share_or_count(name: str, value: float) -> float:
    if value < 0 or (value >= 1 and value != int(value)):
        raise RecsysError(f"split {name} must be a share in [0, 1) or a count >= 1, got {value}")
    return float(value)


def _how_many(value: float, n: int) -> int:
    """Users a share (< 1) of ``n`` stands for, or the count itself."""
    return int(round(value * n)) if value < 1 else int(value)


class _RatioSplit:
    """A split into shares: ``test_ratio`` and ``val_ratio`` of the interactions."""

    def __init__(self, test_ratio: float = 0.2, val_ratio: float = 0.1) -> None:
        self.test_ratio = _ratio("test_ratio", test_ratio)
        self.val_ratio = _ratio("val_ratio", val_ratio)
        if self.test_ratio + self.val_ratio >= 1:
            raise RecsysError("split test_ratio + val_ratio must be < 1")


class RandomHoldout(_RatioSplit):
    """Per-user random holdout.

    For each user with n interactions, ``round(test_ratio * n)`` random pairs go to test and
    ``round(val_ratio * n)`` to validation, always leaving at least one in training (the
    validation share is cut first). Users with a single interaction keep it in training.
    """

    name = "random"

    def __call__(self, data: Interactions, seed: int) -> Split:
        rng = np.random.default_rng(seed)
        counts = np.diff(data.matrix.indptr)
        n_test = np.floor(self.test_ratio * counts + 0.5).astype(np.int64)
        n_val = np.floor(self.val_ratio * counts + 0.5).astype(np.int64)
        n_test = np.minimum(n_test, np.maximum(counts - 1, 0))
        n_val = np.minimum(n_val, np.maximum(counts - 1 - n_test, 0))
        rows = data.rows()
        # rank of each entry within its user's row, in a random order
        order = np.lexsort((rng.random(data.nnz), rows))
        rank = np.empty(data.nnz, dtype=np.int64)
        rank[order] = np.arange(data.nnz) - data.matrix.indptr[rows[order]]
        test = rank < n_test[rows]
        val = ~test & (rank < (n_test + n_val)[rows])
        train = ~(test | val)
        split = Split(data.subset(train), data.subset(val), data.subset(test))
        return split.check(self.name, expect_val=self.val_ratio > 0)


class TemporalSplit(_RatioSplit):
    """Global time cut: the latest ``test_ratio`` of interactions (by timestamp) are test, the
    ``val_ratio`` before them validation, the rest training.

    Interactions at exactly a cut time go to the later part, so no training pair is later
    than any validation or test pair. A pair seen several times counts at its first time.
    """

    name = "temporal"

    def __call__(self, data: Interactions, seed: int) -> Split:
        del seed  # deterministic
        if data.timestamps is None:
            raise RecsysError(
                "split 'temporal' needs timestamps, and this dataset has none; use split=random"
            )
        ts = np.sort(data.timestamps)
        n = len(ts)

        def cut(share: float) -> float:
            k = int(np.floor(n * (1 - share)))
            return ts[k] if k < n else np.inf

        t_test = cut(self.test_ratio)
        t_val = cut(self.test_ratio + self.val_ratio)
        test = data.timestamps >= t_test
        val = ~test & (data.timestamps >= t_val)
        train = ~(test | val)
        log.info("temporal split: validation from t=%s, test from t=%s", t_val, t_test)
        return Split(data.subset(train), data.subset(val), data.subset(test)).check(self.name)


def _rank_within_users(data: Interactions, key: np.ndarray) -> np.ndarray:
    """``(nnz,)`` 0-based rank of each entry within its user's row, by ``key`` descending."""
    rows = data.rows()
    order = np.lexsort((-key, rows))
    rank = np.empty(data.nnz, dtype=np.int64)
    rank[order] = np.arange(data.nnz) - data.matrix.indptr[rows[order]]
    return rank


class LeaveOneOut:
    """Per user, the last interaction (``by: time``, needs timestamps; ties broken at random)
    or a random one (``by: random``) is test, and with ``validation`` the one before it is
    validation. Users keep at least one training interaction: a user with two has no
    validation pair, a user with one only trains."""

    name = "leave_one_out"

    def __init__(self, by: str = "time", validation: bool = True) -> None:
        if by not in ("time", "random"):
            raise RecsysError(f"leave_one_out 'by' must be 'time' or 'random', got {by!r}")
        self.by, self.validation = by, bool(validation)

    def __call__(self, data: Interactions, seed: int) -> Split:
        rng = np.random.default_rng(seed)
        tiebreak = rng.random(data.nnz)
        if self.by == "time":
            if data.timestamps is None:
                raise RecsysError(
                    "split 'leave_one_out' with by=time needs timestamps, and this dataset has "
                    "none; use split.by=random"
                )
            key = data.timestamps.astype(np.float64) + 0.5 * tiebreak
        else:
            key = tiebreak
        rank = _rank_within_users(data, key)  # 0 = latest
        counts = np.diff(data.matrix.indptr)[data.rows()]
        test = (rank == 0) & (counts >= 2)
        val = (rank == 1) & (counts >= 3) & self.validation
        train = ~(test | val)
        return Split(data.subset(train), data.subset(val), data.subset(test)).check(self.name)


class StrongGeneralization:
    """Held-out users (Liang et al. 2018): ``test_users`` and ``val_users`` (shares in [0, 1)
    of the users with at least ``min_interactions``, or user counts >= 1) are removed from
    training; each one's history is split into a fold-in part, given to the model at
    evaluation, and ``holdout_ratio`` of it to find (at least one), chosen at random or, with
    ``by_time``, the latest ones. As in Liang et al.'s protocol, held-out users' pairs on
    items that no training user has are dropped first (no model could learn those items);
    the log counts them."""

    name = "strong_generalization"

    def __init__(
        self,
        test_users: float = 0.1,
        val_users: float = 0.1,
        holdout_ratio: float = 0.2,
        by_time: bool = False,
        min_interactions: int = 2,
    ) -> None:
        self.test_users = _share_or_count("test_users", test_users)
        self.val_users = _share_or_count("val_users", val_users)
        self.holdout_ratio = _ratio("holdout_ratio", holdout_ratio)
        if self.test_users < 1 and self.val_users < 1 and self.test_users + self.val_users >= 1:
            raise RecsysError("split test_users + val_users must be < 1")
        self.by_time, self.min_interactions = bool(by_time), max(2, int(min_interactions))

    def __call__(self, data: Interactions, seed: int) -> Split:
        rng = np.random.default_rng(seed)
        counts = np.diff(data.matrix.indptr)
        eligible = rng.permutation(np.flatnonzero(counts >= self.min_interactions))
        n_test = _how_many(self.test_users, len(eligible))
        n_val = _how_many(self.val_users, len(eligible))
        if n_test + n_val > len(eligible):
            raise RecsysError(
                f"split strong_generalization: {n_test} test + {n_val} validation users "
                f"asked for, but only {len(eligible)} users have >= {self.min_interactions} "
                "interactions"
            )
        role = np.zeros(data.n_users, dtype=np.int8)  # 0 train, 1 val, 2 test user
        role[eligible[:n_test]] = 2
        role[eligible[n_test : n_test + n_val]] = 1
        if self.by_time:
            if data.timestamps is None:
                raise RecsysError(
                    "split 'strong_generalization' with by_time needs timestamps; "
                    "set split.by_time=false"
                )
            key = data.timestamps.astype(np.float64) + 0.5 * rng.random(data.nnz)
        else:
            key = rng.random(data.nnz)
        rows, cols = data.rows(), data.matrix.indices
        held_user = role[rows] > 0
        trained_item = np.bincount(cols[~held_user], minlength=data.n_items) > 0
        kept = ~held_user | trained_item[cols]
        key = np.where(kept, key, -np.inf)  # dropped pairs rank last
        rank = _rank_within_users(data, key)  # 0 = latest (or first drawn)
        counts = np.bincount(rows[kept], minlength=data.n_users)
        n_hold = np.clip(np.floor(self.holdout_ratio * counts + 0.5), 1, counts - 1)[rows]
        scored = held_user & kept & (rank < n_hold)
        split = Split(
            train=data.subset(~held_user),
            val=data.subset(scored & (role[rows] == 1)),
            test=data.subset(scored & (role[rows] == 2)),
            fold_in=data.subset(held_user & kept & ~scored),
        )
        log.info(
            "strong generalization: %d training users, %d validation and %d test users held "
            "out; %d of their pairs dropped (items no training user has)",
            int((role == 0).sum()),
            n_val,
            n_test,
            int((~kept).sum()),
        )
        return split.check(self.name)


class PredefinedSplit:
    """The dataset's own train/test split (e.g. gowalla's, coat's random test set, or an
    event log's ``data.test_path`` / ``data.split_column``), used as given. With
    ``val_ratio`` > 0 a per-user random share of the training part becomes validation. Test
    pairs that are also in training stay in training and are removed from the test part,
    counted in a warning: test ranking excludes each user's training items, so such a pair
    could never be recommended."""

    name = "predefined"

    def __init__(self, val_ratio: float = 0.0) -> None:
        self.val_ratio = _ratio("val_ratio", val_ratio)

    def __call__(self, data: Interactions, seed: int) -> Split:
        raise RecsysError(
            "split=predefined takes the dataset's own split, and this dataset has none (an "
            "event log, data=events, has one with data.test_path or data.split_column); "
            "choose split=random, temporal, leave_one_out or strong_generalization"
        )

    def from_parts(self, parts: dict[str, Interactions], seed: int) -> Split:
        train, test = parts["train"], parts["test"]
        overlap = test.matrix.multiply(train.matrix) != 0
        n_overlap = int(overlap.nnz)
        if n_overlap:
            keep = ~np.asarray(overlap[test.rows(), test.matrix.indices]).ravel()
            test = test.subset(keep)
            log.warning(
                "predefined split: %d test pairs are also training pairs; removed from test",
                n_overlap,
            )
        if self.val_ratio > 0:
            inner = RandomHoldout(test_ratio=self.val_ratio, val_ratio=0.0)
            carved = inner(train, seed)
            train, val = carved.train, carved.test
        else:
            val = train.subset(np.zeros(train.nnz, dtype=bool))
        split = Split(train, val, test, test_candidates=parts.get("test_candidates"))
        return split.check(self.name, expect_val=self.val_ratio > 0)


def complete_candidates(
    candidates: Interactions, test: Interactions, source: str, seen: sp.spmatrix | None = None
) -> Interactions:
    """The test candidates (the only items each user's test ranking runs over), with every
    held-out test item among its user's candidates: a held-out item outside them could never
    be found, so missing ones are added and counted (a file of sampled negatives only, as
    NCF's ``test.negative``, gets all held-out items added: said once, not warned). A test
    user without any candidate is an error: their ranking would run over their held-out
    items alone. Candidates that are a user's ``seen`` items (a users x items matrix of the
    training and validation pairs) stay listed and are excluded from the ranking like any
    training item (counted in the log)."""
    truth = test.matrix.astype(bool).astype(np.float32)
    listed = candidates.matrix.astype(bool).astype(np.float32)
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    without = users[np.diff(listed.indptr)[users] == 0]
    if len(without):
        raise RecsysError(
            f"{len(without):,} of the {len(users):,} test users have no candidates in {source} "
            f"(e.g. user {test.user_ids[without[0]]!r}): list candidates for every user with a "
            "held-out test item (the split decides who has one), or give none to rank every item"
        )
    found = int(truth.multiply(listed).nnz)
    missing = truth.nnz - found
    if missing == truth.nnz:
        log.info(
            "test candidates %s hold none of the %d held-out test items; each user's held-out "
            "items are added to their candidates", source, truth.nnz,
        )  # fmt: skip
    elif missing:
        added_users = int((np.diff((truth - truth.multiply(listed)).tocsr().indptr) > 0).sum())
        log.warning(
            "%d held-out test items (of %d users) were not among their users' candidates in "
            "%s; added, so that they can be found", missing, added_users, source,
        )  # fmt: skip
    merged = (listed + truth).tocsr()
    merged.data[:] = 1.0
    merged.sum_duplicates()
    merged.sort_indices()
    n_users = int((np.diff(merged.indptr) > 0).sum())
    excluded = 0 if seen is None else int(merged.multiply(seen.astype(bool)).nnz)
    log.info(
        "test candidates: %d (user, item) pairs for %d users; %d of them are the user's training "
        "or validation items, excluded from the ranking", merged.nnz, n_users, excluded,
    )  # fmt: skip
    return Interactions(merged.astype(np.float32), candidates.user_ids, candidates.item_ids)
