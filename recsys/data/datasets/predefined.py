"""Datasets that ship their own train/test split."""

from __future__ import annotations

import numpy as np

from recsys.data.interactions import Interactions


class PredefinedSplitDataset:
    """Base class: ``load_parts()`` gives ``{"train": ..., "test": ...}`` (same id maps; and
    optionally ``test_candidates``, the items each test ranking runs over); ``load()`` gives
    the union of train and test (strengths of a pair in both parts are summed), for use
    with any other split. ``split=predefined`` uses the parts as given."""

    name = "predefined"

    def load_parts(self) -> dict[str, Interactions]:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self) -> Interactions:
        parts = [p for name, p in self.load_parts().items() if name in ("train", "test")]
        first = parts[0]
        coos = [p.matrix.tocoo() for p in parts]
        ts = [p.timestamps for p in parts]
        return Interactions.from_arrays(
            first.user_ids[np.concatenate([c.row for c in coos])],
            first.item_ids[np.concatenate([c.col for c in coos])],
            np.concatenate([c.data for c in coos]),
            None if any(t is None for t in ts) else np.concatenate(ts),
            user_ids=first.user_ids,
            item_ids=first.item_ids,
        )
