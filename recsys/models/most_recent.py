"""The "most recent articles" block of a publisher's site (``model=most_recent``)."""

from __future__ import annotations

import torch

from recsys.data.item_times import recency_days
from recsys.data.training_data import TrainingData
from recsys.errors import ConfigError
from recsys.models.base import OnePassModule


class MostRecent(OnePassModule):
    """score(u, i) = publication time of item i (days, relative to the earliest item): the
    same list for every user, latest first. Publication times are ``TrainingData.
    item_published`` (the dataset's own, or each item's first interaction). In a
    full-ranking evaluation at the end of the log this ranks the items that are newest then;
    ``recsys-replay`` asks for it at each moment of a session, among the items published by
    then."""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.save_hyperparameters(logger=False)
        self.register_buffer("item_times", torch.zeros(n_items))
        self._published = None

    def prepare(self, data: TrainingData) -> None:
        super().prepare(data)
        if data.item_published is None:
            raise ConfigError(
                "model=most_recent needs item publication times or timestamps, and this "
                "dataset has neither"
            )
        self._published = data.item_published

    def fit_epoch(self) -> None:
        self.item_times.copy_(torch.from_numpy(recency_days(self._published)))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.item_times.expand(len(users), -1).clone()

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        return self.item_times.expand(n_users, -1).clone()
