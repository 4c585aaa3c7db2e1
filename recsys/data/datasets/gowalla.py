"""Gowalla check-ins with the NGCF/LightGCN predefined split, read from the zip as shipped."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from recsys.data.datasets.files import require_dir, require_file
from recsys.data.datasets.predefined import PredefinedSplitDataset
from recsys.data.interactions import Interactions
from recsys.errors import DataFormatError


class Gowalla(PredefinedSplitDataset):
    """``<path>/light_gcn_gowalla.zip``: ``train.txt`` and ``test.txt``, one line per user,
    ``user item item ...`` (0-based remapped ids, which are kept as the external ids).
    Binary: every pair has strength 1. 29,858 users, 40,981 items; 810,128 train and
    217,242 test pairs."""

    name = "gowalla"
    archive = "light_gcn_gowalla.zip"

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def source_files(self) -> list[Path]:
        return [self.path / self.archive]

    def load_parts(self) -> dict[str, Interactions]:
        folder = require_dir(self.path, self.name, self.archive)
        source = require_file(folder / self.archive, self.name)
        with zipfile.ZipFile(source) as z:
            names = {Path(n).name: n for n in z.namelist()}
            pairs = {}
            for part in ("train", "test"):
                member = names.get(f"{part}.txt")
                if member is None:
                    raise DataFormatError(f"{source}: no {part}.txt inside the zip")
                pairs[part] = _parse_lists(z.read(member).decode(), f"{source}:{member}")
        users = np.unique(np.concatenate([p[0] for p in pairs.values()]))
        items = np.unique(np.concatenate([p[1] for p in pairs.values()]))
        return {
            part: Interactions.from_arrays(u, i, user_ids=users, item_ids=items)
            for part, (u, i) in pairs.items()
        }


def _parse_lists(text: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Lines of ``user item item ...`` -> parallel (users, items) int64 arrays."""
    users, items = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            ids = np.array(fields, dtype=np.int64)
        except ValueError:
            raise DataFormatError(
                f"{where}:{lineno}: expected space-separated integer ids, got {line[:80]!r}"
            ) from None
        users.append(np.full(len(ids) - 1, ids[0]))
        items.append(ids[1:])
    return np.concatenate(users), np.concatenate(items)
