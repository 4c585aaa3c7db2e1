"""MovieLens loaders (GroupLens; research use only, never redistributed with this project)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.datasets.files import read_int_table, require_dir, require_file
from recsys.data.interactions import Interactions
from recsys.errors import DataFormatError, EmptyDataError


def _ratings_to_interactions(
    frame: pd.DataFrame, source: Path, min_rating: float | None, binarize: bool
) -> Interactions:
    if min_rating is not None:
        frame = frame[frame["rating"] >= min_rating]
    if frame.empty:
        raise EmptyDataError(f"{source}: no ratings left (min_rating={min_rating})")
    strengths = np.ones(len(frame)) if binarize else frame["rating"].to_numpy()
    return Interactions.from_arrays(
        frame["user"].to_numpy(),
        frame["item"].to_numpy(),
        strengths,
        frame["timestamp"].to_numpy(),
    )


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

    def source_files(self) -> list[Path]:
        return [self.path / "u.data"]

    def item_text(self) -> dict[int, str]:
        """Item id -> its title and genre names, from ``u.item`` and ``u.genre``."""
        folder = require_dir(self.path, self.name, "u.item")
        genres = [
            line.split("|")[0]
            for line in require_file(folder / "u.genre", self.name)
            .read_text(encoding="latin-1")
            .splitlines()
            if line.strip()
        ]
        out = {}
        items = require_file(folder / "u.item", self.name).read_text(encoding="latin-1")
        for line in items.splitlines():
            fields = line.split("|")
            if len(fields) < 5 + len(genres):
                continue
            flags = fields[-len(genres) :]
            names = [g for g, f in zip(genres, flags) if f.strip() == "1"]
            out[int(fields[0])] = " ".join([fields[1], *names])
        return out

    def load(self) -> Interactions:
        folder = require_dir(self.path, self.name, "u.data")
        source = require_file(folder / "u.data", self.name)
        frame = read_int_table(source, sep="\t", columns=["user", "item", "rating", "timestamp"])
        return _ratings_to_interactions(frame, source, self.min_rating, self.binarize)


class MovieLensLatestSmall(MovieLens100K):
    """MovieLens latest-small from ``<path>/ratings.csv`` (``userId,movieId,rating,timestamp``
    with a header; half-star ratings). Same arguments as ``MovieLens100K``."""

    name = "ml_latest_small"

    def source_files(self) -> list[Path]:
        return [self.path / "ratings.csv"]

    def item_text(self) -> dict[int, str]:
        """Item id -> title, genres and every tag users gave it (``movies.csv``,
        ``tags.csv`` where present)."""
        folder = require_dir(self.path, self.name, "movies.csv")
        movies = pd.read_csv(require_file(folder / "movies.csv", self.name))
        text = {
            int(m): f"{t} {g.replace('|', ' ')}"
            for m, t, g in zip(movies["movieId"], movies["title"], movies["genres"])
        }
        if (folder / "tags.csv").is_file():
            tags = pd.read_csv(folder / "tags.csv")
            joined = tags.groupby("movieId")["tag"].agg(lambda t: " ".join(map(str, t)))
            for m, words in joined.items():
                text[int(m)] = f"{text.get(int(m), '')} {words}"
        return text

    def load(self) -> Interactions:
        folder = require_dir(self.path, self.name, "ratings.csv")
        source = require_file(folder / "ratings.csv", self.name)
        names = {"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "timestamp"}
        try:
            frame = pd.read_csv(
                source,
                dtype={
                    "userId": np.int64,
                    "movieId": np.int64,
                    "rating": np.float64,
                    "timestamp": np.int64,
                },
            )
        except (ValueError, pd.errors.ParserError) as e:
            raise DataFormatError(f"{source}: not a MovieLens ratings.csv: {e}") from e
        missing = set(names) - set(frame.columns)
        if missing:
            raise DataFormatError(f"{source}: missing column(s) {sorted(missing)}")
        frame = frame.rename(columns=names)
        return _ratings_to_interactions(frame, source, self.min_rating, self.binarize)


class MovieLens20M(MovieLensLatestSmall):
    """MovieLens 20M from ``<path>/ratings.csv`` (the same format as latest-small; 20,000,263
    ratings of 138,493 users). Not in ``../shared/data``: download it from GroupLens
    (https://grouplens.org/datasets/movielens/20m/, research use, no redistribution) and
    unzip it to ``${paths.data_dir}/ml-20m``. Same arguments as ``MovieLens100K``."""

    name = "ml20m"
