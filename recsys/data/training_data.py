"""``TrainingData``: everything a model may use to fit, in one frozen value (users are rows).

The DataModule builds it once (``RecsysDataModule.training_data``) and hands it to the model
(``RecommenderModule.prepare``) before training; a model reads nothing else. It can also be
built by hand for a model used from Python without a Trainer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys.data.confidence import Confidence
from recsys.data.interactions import Interactions
from recsys.data.propensity import item_counts
from recsys.data.splits import Split


@dataclass(frozen=True, eq=False)
class TrainingData:
    """The training part and what was fitted on it.

    Attributes:
        train: the training ``Interactions``: raw strengths ``(n_users, n_items)``, timestamps,
            per-pair features, and the id maps (``user_ids``, ``item_ids``).
        confidence: ``(n_users, n_items)`` float32 CSR of training confidences c_ui (the
            sparsity of ``train.matrix``).
        confidence_model: the fitted ``Confidence`` that made them; it weights new users'
            histories the same way (fold-in) and travels in checkpoints.
        propensity: ``(n_items,)`` float64 item propensities theta_i, or None when the run has
            no propensity model (``propensity=none``).
        item_text: ``(n_items,)`` texts of the items (content: title, topic, genres...), or
            None when the dataset has none.
        item_published: ``(n_items,)`` float64 unix seconds at which each item became
            available (``recsys.data.item_times.publication_times``), or None when the data
            has neither publication times nor timestamps.
        fingerprint: per part of the split (``train``, ``val``, ``test``...), its number of
            pairs and a hash of its contents (``split_fingerprint``).
    """

    train: Interactions
    confidence: sp.csr_matrix
    confidence_model: Confidence
    propensity: np.ndarray | None = None
    item_text: list[str] | None = None
    item_published: np.ndarray | None = None
    fingerprint: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = self.train.matrix.shape
        if self.confidence.shape != shape or self.confidence.nnz != self.train.nnz:
            raise ValueError(f"confidence {self.confidence.shape} does not match train {shape}")
        for name in ("propensity", "item_text", "item_published"):
            value = getattr(self, name)
            if value is not None and len(value) != shape[1]:
                raise ValueError(f"{name} has {len(value)} entries for {shape[1]} items")

    @classmethod
    def from_interactions(
        cls, train: Interactions, confidence: Confidence, **kwargs
    ) -> TrainingData:
        """Fit ``confidence`` on ``train`` and build the value (the other fields by name)."""
        confidence.fit(train)
        return cls(train, confidence.matrix(train), confidence, **kwargs)

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    @property
    def user_ids(self) -> np.ndarray:
        return self.train.user_ids

    @property
    def item_ids(self) -> np.ndarray:
        return self.train.item_ids

    def user_counts(self) -> np.ndarray:
        """``(n_users,)`` training items of each user."""
        return np.diff(self.train.matrix.indptr)

    def item_counts(self) -> np.ndarray:
        """``(n_items,)`` float64 training users of each item (n_i)."""
        return item_counts(self.train)


def split_fingerprint(split: Split) -> dict[str, dict]:
    """``{part: {"pairs": nnz, "sha256": hex}}`` for each part of ``split``: a hash of the
    part's matrix (shape, row pointers, columns, strengths), timestamps and features, so that
    data changed under unchanged ids is told apart."""
    out = {}
    for name in ("train", "val", "test", "fold_in", "test_candidates"):
        part = getattr(split, name)
        if part is None:
            continue
        m = part.matrix
        h = hashlib.sha256(repr(m.shape).encode())
        for array in (m.indptr, m.indices, m.data):
            h.update(np.ascontiguousarray(array, dtype=np.int64 if array is not m.data else None))
        if part.timestamps is not None:
            h.update(b"timestamps")
            h.update(np.ascontiguousarray(part.timestamps, dtype=np.int64))
        for key in sorted(part.features):
            h.update(key.encode())
            h.update(np.ascontiguousarray(part.features[key], dtype=np.float64))
        out[name] = {"pairs": int(m.nnz), "sha256": h.hexdigest()}
    return out
