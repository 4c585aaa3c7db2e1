"""Train / validation / test splits of Interactions. Every pair lands in exactly one part."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from recsys.data.interactions import Interactions
from recsys.errors import EmptyDataError, RecsysError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Three disjoint parts of one Interactions, with the same shape and id maps."""

    train: Interactions
    val: Interactions
    test: Interactions

    def check(self, name: str) -> Split:
        """Raise EmptyDataError if training or test is empty; warn if validation is."""
        for part in ("train", "test"):
            if getattr(self, part).nnz == 0:
                raise EmptyDataError(
                    f"split '{name}' left no {part} interactions "
                    f"(train={self.train.nnz}, val={self.val.nnz}, test={self.test.nnz}); "
                    "change the split's ratios or use a larger dataset"
                )
        if self.val.nnz == 0:
            log.warning("split '%s' has no validation interactions", name)
        return self


def _ratio(name: str, value: float) -> float:
    if not 0 <= value < 1:
        raise RecsysError(f"split {name} must be in [0, 1), got {value}")
    return float(value)


class RandomHoldout:
    """Per-user random holdout.

    For each user with n interactions, ``round(test_ratio * n)`` random pairs go to test and
    ``round(val_ratio * n)`` to validation, always leaving at least one in training (the
    validation share is cut first). Users with a single interaction keep it in training.
    """

    name = "random"

    def __init__(self, test_ratio: float = 0.2, val_ratio: float = 0.1) -> None:
        self.test_ratio = _ratio("test_ratio", test_ratio)
        self.val_ratio = _ratio("val_ratio", val_ratio)
        if self.test_ratio + self.val_ratio >= 1:
            raise RecsysError("split test_ratio + val_ratio must be < 1")

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
        return Split(data.subset(train), data.subset(val), data.subset(test)).check(self.name)


class TemporalSplit:
    """Global time cut: the latest ``test_ratio`` of interactions (by timestamp) are test, the
    ``val_ratio`` before them validation, the rest training.

    Interactions at exactly a cut time go to the later part, so no training pair is later
    than any validation or test pair. A pair seen several times counts at its first time.
    """

    name = "temporal"

    def __init__(self, test_ratio: float = 0.2, val_ratio: float = 0.1) -> None:
        self.test_ratio = _ratio("test_ratio", test_ratio)
        self.val_ratio = _ratio("val_ratio", val_ratio)
        if self.test_ratio + self.val_ratio >= 1:
            raise RecsysError("split test_ratio + val_ratio must be < 1")

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
