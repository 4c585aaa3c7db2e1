"""MovieLens loaders (GroupLens; research use only, never redistributed with this project)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.data.datasets.files import read_int_table, require_dir, require_file
from recsys.data.interactions import Interactions
from recsys.errors import EmptyDataError


class MovieLens100K:
    """MovieLens 100K from ``<path>/u.data`` (tab-separated user, item, rating, timestamp).

    Args:
        path: folder holding ``u.data``, by default ``${paths.data_dir}/ml-100k``.
        min_rating: keep only ratings >= this (e.g. 4 for "liked"); None keeps all.
        binarize: strength 1 for every kept rating instead of the rating itself.
    """

    name = "ml100k"

    def __init__(self, path: str, min_rating: float | None = None, binarize: bool = False):
        self.path = Path(path)
        self.min_rating = min_rating
        self.binarize = binarize

    def load(self) -> Interactions:
        folder = require_dir(self.path, self.name, "u.data")
        frame = read_int_table(
            require_file(folder / "u.data", self.name),
            sep="\t",
            columns=["user", "item", "rating", "timestamp"],
        )
        if self.min_rating is not None:
            frame = frame[frame["rating"] >= self.min_rating]
        if frame.empty:
            raise EmptyDataError(
                f"{folder / 'u.data'}: no ratings left (min_rating={self.min_rating})"
            )
        strengths = np.ones(len(frame)) if self.binarize else frame["rating"].to_numpy()
        return Interactions.from_arrays(
            frame["user"].to_numpy(),
            frame["item"].to_numpy(),
            strengths,
            frame["timestamp"].to_numpy(),
        )
