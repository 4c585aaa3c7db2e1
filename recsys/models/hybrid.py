"""Hybrids for cold start: a collaborative model for users with enough history, content for
the others, and new items placed in the factor space from their content. ``model=hybrid``
trains iALS in the same run (``HybridALS``); ``model=hybrid_cf`` wraps any trained model of
ours from its checkpoint (``Hybrid``)."""

from __future__ import annotations

import numpy as np
import torch

from recsys.data.interactions import same_ids
from recsys.data.training_data import TrainingData
from recsys.errors import ConfigError, RecsysError
from recsys.models.als import ALS
from recsys.models.base import OnePassModule, RecommenderModule
from recsys.models.content import (
    KeepsTextEncoder,
    content_scores,
    fit_content,
    profile_scores,
    register_content_buffers,
    require_text,
)
from recsys.registry import resolve_class


def ridge_map(
    vectors: torch.Tensor, new: torch.Tensor, factors: torch.Tensor, ridge: float
) -> torch.Tensor:
    """Factors ``(n_new, k)`` of the ``new`` items (bool ``(n_items,)``) from their content
    ``vectors`` ``(n_items, d)``: y_i = v_i W, W = (V^T V + ridge I)^-1 V^T Y over the warm
    items (V, Y their rows of ``vectors`` and ``factors``)."""
    v = vectors.double()
    warm = ~new
    vw, yw = v[warm], factors[warm].double()
    eye = torch.eye(v.shape[1], dtype=torch.float64, device=v.device)
    w = torch.linalg.solve(vw.T @ vw + ridge * eye, vw.T @ yw)
    return (v[new] @ w).to(factors.dtype)


def route(scores, history, n_min: int, content, popularity) -> torch.Tensor:
    """``scores`` ``(B, n_items)`` replaced by ``content(rows)`` where the ``history``
    ``(B,)`` is shorter than ``n_min``, and by ``popularity`` where it is empty."""
    cold = history < n_min
    if bool(cold.any()):
        scores[cold] = content(cold)
    empty = history == 0
    if bool(empty.any()):
        scores[empty] = popularity
    return scores


def _register_buffers(model, n_users: int, n_items: int, factors: int) -> None:
    """The hybrids' buffers, empty until fitted (content vectors and profiles, history
    lengths, new items and their mapped ``factors``-wide factors, popularity)."""
    register_content_buffers(model)
    model.register_buffer("history", torch.zeros(n_users, dtype=torch.int64))
    model.register_buffer("new_items", torch.zeros(n_items, dtype=torch.bool))
    model.register_data_buffer("new_item_factors", torch.zeros(0, factors))
    model.register_buffer("popularity", torch.zeros(n_items))


def _history_and_popularity(model, train) -> None:
    """Set ``model``'s buffers ``history`` (training items per user), ``new_items`` (items
    with none) and ``popularity`` (training users per item / the largest)."""
    model.history = torch.from_numpy(np.diff(train.matrix.indptr).astype(np.int64)).to(model.device)
    counts = np.bincount(train.matrix.indices, minlength=model.n_items)
    model.new_items = torch.from_numpy(counts == 0).to(model.device)
    model.popularity = torch.from_numpy(counts / max(counts.max(), 1)).float().to(model.device)


class HybridALS(KeepsTextEncoder, ALS):
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
        _register_buffers(self, n_users, n_items, self.hparams.factors)

    def prepare(self, data: TrainingData) -> None:
        """Takes ALS's data, and the item texts and training counts for the fallbacks."""
        super().prepare(data)
        require_text(data)
        fit_content(self, data)
        _history_and_popularity(self, data.train)

    def on_fit_start(self) -> None:
        super().on_fit_start()
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
        self.new_item_factors = ridge_map(
            self.item_vectors, self.new_items, self.item_factors, h.ridge
        )

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
        return route(scores, history, self.hparams.n_min, content, self.popularity)

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        rows, cols = rows.to(self.device), cols.to(self.device)
        scores = self.fold_in_rows(rows, cols, conf, n_users) @ self._items().T
        history = torch.bincount(rows, minlength=n_users)
        return self._route(
            scores, history, lambda r: content_scores(self.item_vectors, rows, cols, n_users)[r]
        )


class Hybrid(KeepsTextEncoder, OnePassModule):
    """Any trained model of ours (its checkpoint, ``collaborative``) with a content fallback:
    users with at least ``n_min`` training interactions get its scores, the others content
    scores (as ``HybridALS``), users with none popularity. For a factor model (ALS, WMF, BPR:
    ``factor_tables()``), new items get factors from their content by the ridge map of
    ``HybridALS`` and are scored with the users' factors; other models' scores of new items
    are kept. Fitting reads no interaction data beyond the training part's counts; the
    collaborative model travels inside this model's checkpoint.

    Args:
        collaborative: checkpoint of the collaborative model, trained on the same data.
        n_min, recent, ridge, map_new_items, encoder, dims, model_path: as ``HybridALS``.
        collaborative_model: filled in from the checkpoint (its class and hyperparameters),
            so that a saved hybrid rebuilds it; not set by users.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        collaborative: str | None = None,
        n_min: int = 3,
        recent: int = 10,
        ridge: float = 1.0,
        map_new_items: bool = True,
        encoder: str = "tfidf_svd",
        dims: int = 64,
        model_path: str | None = None,
        collaborative_model: dict | None = None,
    ) -> None:
        super().__init__(n_users, n_items)
        if collaborative_model is None:  # a new hybrid: the collaborative model's checkpoint
            from recsys.models.checkpoint import load_model

            if not collaborative:
                raise RecsysError(
                    "model=hybrid_cf needs model.collaborative=<checkpoint of a model trained "
                    "on the same data> (e.g. logs/train/runs/.../checkpoints/last.ckpt)"
                )
            cf = load_model(collaborative).train()  # trained along (inference switches to eval)
            cls = type(cf)
            collaborative_model = {
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "hparams": dict(cf.hparams),
            }
        else:  # rebuilt from a saved hybrid; its weights come with the state dict
            cls = resolve_class(collaborative_model["class"], RecommenderModule, "model")
            cf = cls(**collaborative_model["hparams"])
        if (cf.n_users, cf.n_items) != (n_users, n_items):
            raise RecsysError(
                f"the collaborative model has {cf.n_users} users x {cf.n_items} items, this "
                f"data {n_users} x {n_items}: train it on the same data, filter and split"
            )
        self.save_hyperparameters(logger=False)
        self.cf = cf
        self._data: TrainingData | None = None
        _register_buffers(self, n_users, n_items, 0)

    def prepare(self, data: TrainingData) -> None:
        """Checks that the collaborative model was trained on this data (ids and training
        part); takes the item texts and training counts for the fallbacks."""
        super().prepare(data)
        for kind, ours in (("user", data.user_ids), ("item", data.item_ids)):
            theirs = getattr(self.cf, f"{kind}_ids")
            if theirs is not None and not same_ids(theirs, ours):
                raise ConfigError(
                    f"the collaborative model's {kind} ids differ from this data's: train it "
                    "on the same data, filter and split"
                )
        theirs = (self.cf.data_fingerprint or {}).get("train")
        if theirs is not None and theirs != data.fingerprint.get("train"):
            raise ConfigError(
                f"the collaborative model was trained on another training part "
                f"({theirs['pairs']:,} pairs, this run's {data.train.nnz:,}, or the same count "
                "with other pairs): train it on the same data, filter, split and seed"
            )
        require_text(data)
        self._data = data

    def fit_epoch(self) -> None:
        fit_content(self, self._data)
        _history_and_popularity(self, self._data.train)
        tables = self.cf.factor_tables()
        if self.hparams.map_new_items and tables is not None and bool(self.new_items.any()):
            self.new_item_factors = ridge_map(
                self.item_vectors, self.new_items, tables[1], self.hparams.ridge
            )

    def _with_new_items(self, scores: torch.Tensor, user_vectors) -> torch.Tensor:
        if self.new_item_factors.numel() and user_vectors is not None:
            scores[:, self.new_items] = user_vectors @ self.new_item_factors.T
        return scores

    def score(self, users: torch.Tensor) -> torch.Tensor:
        users = users.to(self.device)
        tables = self.cf.factor_tables() if self.new_item_factors.numel() else None
        scores = self._with_new_items(
            self.cf.score(users), None if tables is None else tables[0][users]
        )
        return route(
            scores, self.history[users], self.hparams.n_min,
            lambda rows: profile_scores(self, users[rows]), self.popularity,
        )  # fmt: skip

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        rows, cols = rows.to(self.device), cols.to(self.device)
        scores = self.cf.score_folded(rows, cols, conf, n_users)
        if self.new_item_factors.numel() and hasattr(self.cf, "fold_in_rows"):
            scores = self._with_new_items(scores, self.cf.fold_in_rows(rows, cols, conf, n_users))
        return route(
            scores, torch.bincount(rows, minlength=n_users), self.hparams.n_min,
            lambda r: content_scores(self.item_vectors, rows, cols, n_users)[r], self.popularity,
        )  # fmt: skip

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        inner = {k[3:]: v for k, v in state.items() if k.startswith("cf.")}
        # the same data: the collaborative model's ids and training items are the hybrid's
        self.cf.on_load_checkpoint({"state_dict": inner, "recsys": checkpoint.get("recsys", {})})
