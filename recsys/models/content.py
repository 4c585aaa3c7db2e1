"""Content-based recommendation: items similar, by their content vectors, to a user's recent
items (``model=content``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys.data.content import TextEncoder
from recsys.data.training_data import TrainingData
from recsys.errors import ConfigError
from recsys.models.base import OnePassModule


class KeepsTextEncoder:
    """Mixin (first among the bases) of models with content vectors: their fitted
    ``content_encoder`` (a ``TextEncoder``) travels in the checkpoint, so that texts of items
    published after training are placed in the same space (serving)."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        encoder = getattr(self, "content_encoder", None)
        checkpoint["recsys"]["content_encoder"] = None if encoder is None else encoder.state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("recsys", {}).get("content_encoder")
        self.content_encoder = None if state is None else TextEncoder.from_state(state)


class ContentKNN(KeepsTextEncoder, OnePassModule):
    """score(u, j) = sum over the user's ``recent`` latest training items i of cos(v_i, v_j),
    v the items' content vectors (``recsys.data.content``: ``tfidf_svd`` of the dataset's
    ``item_text()``, or a local ``sentence`` model). Users are rows; no interaction data is
    learned, so a brand-new item with content is ranked like any other.

    Args:
        encoder, dims, model_path: how item texts become vectors.
        recent: how many of the user's latest training items form their profile (by time
            where the data has timestamps, else all of them count); 0 = all.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        encoder: str = "tfidf_svd",
        dims: int = 64,
        model_path: str | None = None,
        recent: int = 10,
    ) -> None:
        super().__init__(n_users, n_items)
        self.save_hyperparameters(logger=False)
        register_content_buffers(self)
        self._data: TrainingData | None = None

    def prepare(self, data: TrainingData) -> None:
        super().prepare(data)
        require_text(data)
        self._data = data

    def fit_epoch(self) -> None:
        fit_content(self, self._data)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return profile_scores(self, users)

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        """New users from their items (all of them form the profile)."""
        return content_scores(self.item_vectors, rows, cols, n_users)


def register_content_buffers(model) -> None:
    """The content buffers of ``model`` (filled by ``fit_content``): ``item_vectors``
    ``(n_items, d)``, ``profile_indptr`` ``(n_users + 1,)``, ``profile_items``."""
    model.register_data_buffer("item_vectors", torch.zeros(model.n_items, 0))
    model.register_buffer("profile_indptr", torch.zeros(model.n_users + 1, dtype=torch.int64))
    model.register_data_buffer("profile_items", torch.zeros(0, dtype=torch.int64))


def require_text(data: TrainingData) -> None:
    """ConfigError unless ``data`` has item texts."""
    if data.item_text is None:
        raise ConfigError(
            "this dataset has no item content (item_text()); content models need one, e.g. "
            "data=ml_latest_small, ml100k, publisher_sim, or data=events with an item table "
            "(data.items.path and data.items.columns.text or title)"
        )


def fit_content(model, data: TrainingData) -> None:
    """Set ``model``'s ``content_encoder`` and buffers ``item_vectors`` (from the items'
    text, by the model's ``encoder``, ``dims``, ``model_path``) and ``profile_indptr`` /
    ``profile_items`` (each user's ``recent`` latest training items)."""
    h = model.hparams
    model.content_encoder = TextEncoder(h.encoder, h.dims, h.model_path)
    vectors = model.content_encoder.fit(data.item_text)
    model.item_vectors = torch.from_numpy(vectors).to(model.device)
    profile = recent_items(data.train, h.recent)
    model.profile_indptr = torch.from_numpy(profile.indptr.astype(np.int64)).to(model.device)
    model.profile_items = torch.from_numpy(profile.indices.astype(np.int64)).to(model.device)


def profile_scores(model, users: torch.Tensor) -> torch.Tensor:
    """Content scores ``(B, n_items)`` of ``users`` from their profiles (``fit_content``)."""
    starts, ends = model.profile_indptr[users], model.profile_indptr[users + 1]
    lengths = ends - starts
    rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), lengths)
    first = torch.cumsum(lengths, 0) - lengths
    offset = torch.arange(len(rows), device=users.device) - first[rows]
    cols = model.profile_items[starts[rows] + offset]
    return content_scores(model.item_vectors, rows, cols, len(users))


def content_scores(vectors: torch.Tensor, rows, cols, n_users: int) -> torch.Tensor:
    """``(n_users, n_items)``: row r sums the cosines of every item to the items i with
    (r, i) in (rows, cols); ``vectors`` ``(n_items, d)`` L2-normalised."""
    profile = torch.zeros((n_users, vectors.shape[1]), device=vectors.device)
    profile.index_add_(0, rows.to(vectors.device), vectors[cols.to(vectors.device)])
    return profile @ vectors.T


def recent_items(part, recent: int) -> sp.csr_matrix:
    """``(n_users, n_items)`` binary CSR: each user's ``recent`` latest items of ``part``
    (ties by item index); all of them for ``recent`` 0 or data without timestamps."""
    m = part.matrix.tocsr()
    if recent <= 0 or part.timestamps is None:
        out = m.copy()
        out.data[:] = 1.0
        return out
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -np.asarray(part.timestamps, dtype=np.float64), rows))
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - m.indptr[rows[order]]
    keep = rank < recent
    return sp.csr_matrix(
        (np.ones(keep.sum(), dtype=np.float32), (rows[keep], m.indices[keep])), shape=m.shape
    )
