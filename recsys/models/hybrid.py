"""A hybrid for cold start: iALS for users with enough history, content for the others, and
new items placed in the factor space from their content (``model=hybrid``)."""

from __future__ import annotations

import numpy as np
import torch

from recsys.models.als import ALS
from recsys.models.content import content_scores, fit_content, profile_scores


class HybridALS(ALS):
    """iALS (``ALS``, all its arguments) with a content fallback.

    - **users** with at least ``n_min`` training interactions are scored by iALS; the others
      (and new users folded in with fewer than ``n_min`` items) by content: the sum of the
      cosine similarities of an item's content vector to their ``recent`` latest items';
      users with no item at all by training popularity;
    - **new items** (no training interaction) get item factors from their content vectors,
      y_i = v_i W, with W the ridge regression of the warm items' factors on their vectors,
      W = (V^T V + ridge I)^-1 V^T Y (refitted after every epoch), so iALS users can be
      recommended an item nobody has seen yet.

    Content vectors come from the dataset's ``item_text()`` (``recsys.data.content``:
    ``encoder``, ``dims``, ``model_path``).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_min: int = 3,
        recent: int = 10,
        ridge: float = 1.0,
        map_new_items: bool = True,
        encoder: str = "tfidf_svd",
        dims: int = 64,
        model_path: str | None = None,
        **als,
    ) -> None:
        super().__init__(n_users, n_items, **als)
        self.save_hyperparameters(logger=False)
        self.register_buffer("item_vectors", torch.zeros(n_items, 0))
        self.register_buffer("profile_indptr", torch.zeros(n_users + 1, dtype=torch.int64))
        self.register_buffer("profile_items", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("history", torch.zeros(n_users, dtype=torch.int64))
        self.register_buffer("new_items", torch.zeros(n_items, dtype=torch.bool))
        self.register_buffer("new_item_factors", torch.zeros(0, self.hparams.factors))
        self.register_buffer("popularity", torch.zeros(n_items))

    def on_fit_start(self) -> None:
        super().on_fit_start()
        dm = self.trainer.datamodule
        fit_content(self, dm)
        train = dm.split.train
        self.history = torch.from_numpy(np.diff(train.matrix.indptr).astype(np.int64)).to(
            self.device
        )
        counts = np.bincount(train.matrix.indices, minlength=self.n_items)
        self.new_items = torch.from_numpy(counts == 0).to(self.device)
        self.popularity = torch.from_numpy(counts / max(counts.max(), 1)).float().to(self.device)
        self._map_new_items()

    def fit_epoch(self) -> None:
        super().fit_epoch()
        self._map_new_items()

    def _map_new_items(self) -> None:
        """The ridge map from content to factors, fitted on the warm items; applied to the
        new ones."""
        h = self.hparams
        if not h.map_new_items or not bool(self.new_items.any()):
            self.new_item_factors = torch.zeros(0, h.factors, device=self.device)
            return
        v = self.item_vectors.double()
        warm = ~self.new_items
        vw, yw = v[warm], self.item_factors[warm].double()
        eye = torch.eye(v.shape[1], dtype=torch.float64, device=self.device)
        w = torch.linalg.solve(vw.T @ vw + h.ridge * eye, vw.T @ yw)
        self.new_item_factors = (v[self.new_items] @ w).to(self.item_factors.dtype)

    def _items(self) -> torch.Tensor:
        """Item factors with the new items' mapped from their content."""
        if self.new_item_factors.shape[0] == 0:
            return self.item_factors
        y = self.item_factors.clone()
        y[self.new_items] = self.new_item_factors
        return y

    def score(self, users: torch.Tensor) -> torch.Tensor:
        users = users.to(self.device)
        scores = self.user_factors[users] @ self._items().T
        history = self.history[users]
        return self._route(scores, history, lambda rows: profile_scores(self, users[rows]))

    def _route(self, scores, history, content) -> torch.Tensor:
        """iALS ``scores`` replaced by ``content(rows)`` where the history is short, and by
        popularity where it is empty."""
        cold = history < self.hparams.n_min
        if bool(cold.any()):
            scores[cold] = content(cold)
        empty = history == 0
        if bool(empty.any()):
            scores[empty] = self.popularity
        return scores

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        rows, cols = rows.to(self.device), cols.to(self.device)
        scores = self.fold_in_rows(rows, cols, conf, n_users) @ self._items().T
        history = torch.bincount(rows, minlength=n_users)
        return self._route(
            scores, history, lambda r: content_scores(self.item_vectors, rows, cols, n_users)[r]
        )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        for name in ("item_vectors", "profile_items", "new_item_factors"):
            setattr(self, name, torch.empty_like(state[name]))
