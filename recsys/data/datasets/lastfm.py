"""Last.fm HetRec 2011 (2K users): user-artist play counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.datasets.files import require_dir, require_file
from recsys.data.interactions import Interactions
from recsys.errors import DataFormatError


class LastFM2K:
    """``<path>/user_artists.dat`` (tab-separated ``userID artistID weight`` with a header;
    weight = play count, used as strength). No timestamps."""

    name = "lastfm2k"

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def source_files(self) -> list[Path]:
        return [self.path / "user_artists.dat"]

    def load(self) -> Interactions:
        folder = require_dir(self.path, self.name, "user_artists.dat")
        source = require_file(folder / "user_artists.dat", self.name)
        try:
            frame = pd.read_csv(source, sep="\t", dtype=np.int64)
        except (ValueError, pd.errors.ParserError) as e:
            raise DataFormatError(f"{source}: not a tab-separated integer table: {e}") from e
        expected = ["userID", "artistID", "weight"]
        if list(frame.columns) != expected:
            raise DataFormatError(f"{source}: columns {list(frame.columns)}, expected {expected}")
        return Interactions.from_arrays(
            frame["userID"].to_numpy(), frame["artistID"].to_numpy(), frame["weight"].to_numpy()
        )
