"""Most-popular baseline."""

from __future__ import annotations

import numpy as np
import torch

from recsys.models.base import OnePassModule


class Popularity(OnePassModule):
    """Scores every item by its number of training users, the same for every user."""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.save_hyperparameters(logger=False)
        self.register_buffer("item_counts", torch.zeros(n_items))

    def fit_epoch(self) -> None:
        counts = np.diff(self.seen.tocsc().indptr).astype(np.float32)
        self.item_counts.copy_(torch.from_numpy(counts))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.item_counts.expand(len(users), -1).clone()

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        return self.item_counts.expand(n_users, -1).clone()
