"""Coat (Schnabel et al. 2016): self-selected training ratings, uniformly random test ratings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.data.datasets.files import require_dir, require_file
from recsys.data.datasets.predefined import PredefinedSplitDataset
from recsys.data.interactions import Interactions
from recsys.errors import DataFormatError


class Coat(PredefinedSplitDataset):
    """``<path>/train.ascii`` (24 self-selected ratings per user, missing not at random) and
    ``test.ascii`` (16 uniformly random items per user, missing at random): dense 290 x 300
    matrices of ratings 1-5, 0 = unrated. Ids are the 0-based row and column numbers.

    Training interactions are ratings >= ``train_min_rating`` (strength = rating, or 1 with
    ``binarize``); relevant test items are ratings >= ``test_min_rating``. The random test set
    stays the test set under ``split=predefined``. ``propensities`` (290 x 300, the authors'
    estimates of P(observed) for the training data) is read on request.

    ``test_candidates``: ``all`` ranks every item in the test (full ranking); ``rated`` ranks
    only the 16 items each user rated in the random test set, as debiasing studies do.
    """

    name = "coat"

    def __init__(
        self,
        path: str,
        train_min_rating: float = 4,
        test_min_rating: float = 4,
        binarize: bool = True,
        test_candidates: str = "all",
    ) -> None:
        if test_candidates not in ("all", "rated"):
            raise ValueError(
                f"data.test_candidates must be 'all' or 'rated', got {test_candidates!r}"
            )
        self.test_candidates = test_candidates
        self.path = Path(path)
        self.train_min_rating, self.test_min_rating = train_min_rating, test_min_rating
        self.binarize = binarize

    def source_files(self) -> list[Path]:
        return [self.path / "train.ascii", self.path / "test.ascii"]

    def _matrix(self, name: str) -> np.ndarray:
        folder = require_dir(self.path, self.name, "train.ascii and test.ascii")
        source = require_file(folder / name, self.name)
        try:
            m = np.loadtxt(source)
        except ValueError as e:
            raise DataFormatError(f"{source}: not a dense matrix of numbers: {e}") from e
        if m.ndim != 2:
            raise DataFormatError(f"{source}: expected a 2-d matrix, got shape {m.shape}")
        return m

    def load_parts(self) -> dict[str, Interactions]:
        train, test = self._matrix("train.ascii"), self._matrix("test.ascii")
        if train.shape != test.shape:
            raise DataFormatError(f"coat: train {train.shape} and test {test.shape} differ")
        users, items = np.arange(train.shape[0]), np.arange(train.shape[1])
        parts = {}
        for part, m, threshold in (
            ("train", train, self.train_min_rating),
            ("test", test, self.test_min_rating),
        ):
            u, i = np.nonzero(m >= max(threshold, 1e-9))
            r = np.ones(len(u)) if self.binarize else m[u, i]
            parts[part] = Interactions.from_arrays(u, i, r, user_ids=users, item_ids=items)
        if self.test_candidates == "rated":
            u, i = np.nonzero(test > 0)
            parts["test_candidates"] = Interactions.from_arrays(
                u, i, user_ids=users, item_ids=items
            )
        return parts

    def propensities(self) -> np.ndarray:
        """``(290, 300)`` the authors' propensities of the training ratings."""
        return self._matrix("propensities.ascii")
