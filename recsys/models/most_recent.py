"""The "most recent articles" block of a publisher's site (``model=most_recent``)."""

from __future__ import annotations

import torch

from recsys.data.item_times import publication_times, recency_days
from recsys.models.base import ClosedFormModule


class MostRecent(ClosedFormModule):
    """score(u, i) = publication time of item i (days, relative to the earliest item): the
    same list for every user, latest first. Publication times come from
    ``recsys.data.item_times.publication_times`` (the dataset's own, or each item's first
    interaction). In a full-ranking evaluation at the end of the log this ranks the items
    that are newest then; ``recsys-replay`` asks for it at each moment of a session, among
    the items published by then."""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.save_hyperparameters(logger=False)
        self.register_buffer("item_times", torch.zeros(n_items))

    def fit_epoch(self) -> None:
        dm = self.trainer.datamodule
        days = recency_days(publication_times(dm.dataset, dm.split))
        self.item_times.copy_(torch.from_numpy(days))
        self.trainer.should_stop = True

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.item_times.expand(len(users), -1).clone()

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        return self.item_times.expand(n_users, -1).clone()
