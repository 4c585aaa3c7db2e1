"""The Million Song Dataset's Taste Profile subset (Echo Nest): user-song play counts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.datasets.files import require_dir, require_file
from recsys.data.interactions import Interactions
from recsys.errors import DataFormatError, EmptyDataError


class MillionSongDataset:
    """``<path>/train_triplets.txt``: tab-separated ``user song play_count`` without a header
    (48,373,586 lines of 1,019,318 users and 384,546 songs; about 3 GB). Play counts are the
    strengths (Liang et al. 2018 binarize them: ``binarize: true``). Not in
    ``../shared/data``: download ``train_triplets.txt.zip`` from
    http://millionsongdataset.com/tasteprofile/ and unzip it to ``${paths.data_dir}/msd``.
    User and song ids are read as categories, so the file's 48M strings are held once each.
    """

    name = "msd"

    def __init__(self, path: str, binarize: bool = False) -> None:
        self.path = Path(path)
        self.binarize = bool(binarize)

    def source_files(self) -> list[Path]:
        return [self.path / "train_triplets.txt"]

    def load(self) -> Interactions:
        folder = require_dir(self.path, self.name, "train_triplets.txt")
        source = require_file(folder / "train_triplets.txt", self.name)
        try:
            frame = pd.read_csv(
                source,
                sep="\t",
                header=None,
                names=["user", "song", "plays"],
                dtype={"user": "category", "song": "category", "plays": np.int64},
                engine="c",
            )
        except (ValueError, pd.errors.ParserError) as e:
            raise DataFormatError(f"{source}: {_first_bad_line(source) or e}") from e
        if frame.empty:
            raise EmptyDataError(f"{source}: no lines")
        users, songs = frame["user"].cat, frame["song"].cat
        data = Interactions.from_arrays(
            users.codes.to_numpy(np.int64),
            songs.codes.to_numpy(np.int64),
            np.ones(len(frame)) if self.binarize else frame["plays"].to_numpy(),
            user_ids=np.arange(len(users.categories)),
            item_ids=np.arange(len(songs.categories)),
        )  # codes index the categories: swap the codes for the ids they stand for
        return dataclasses.replace(
            data,
            user_ids=np.asarray(users.categories, dtype=object),
            item_ids=np.asarray(songs.categories, dtype=object),
        )


def _first_bad_line(source: Path) -> str | None:
    """Where and how the file breaks the ``user<TAB>song<TAB>play_count`` format."""
    with open(source, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                return f"line {lineno}: {len(fields)} field(s), expected user, song, play_count"
            if not fields[2].strip().lstrip("-").isdigit():
                return f"line {lineno}: play_count {fields[2]!r} is not an integer"
    return None
