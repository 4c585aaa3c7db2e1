"""The LightningDataModule: load -> split -> confidence, and the evaluation batches."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset

from recsys.data.confidence import Confidence
from recsys.data.interactions import Interactions
from recsys.data.splits import Split
from recsys.errors import EmptyDataError

log = logging.getLogger(__name__)


class EvalBatches(Dataset):
    """Batches of evaluation users, each a dict of tensors (users are rows):

    - ``users``: ``(B,)`` user indices;
    - ``exclude_rows``, ``exclude_cols``: positions (row within the batch, item) to exclude
      from ranking (training items, and validation items when testing);
    - ``truth_rows``, ``truth_cols``: positions of held-out relevant items.

    Only users with at least one held-out item are included.
    """

    def __init__(self, truth: sp.csr_matrix, exclude: sp.csr_matrix, batch_size: int) -> None:
        self.truth = truth
        self.exclude = exclude
        self.users = np.flatnonzero(np.diff(truth.indptr) > 0)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return (len(self.users) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        users = self.users[i * self.batch_size : (i + 1) * self.batch_size]
        out = {"users": torch.from_numpy(users)}
        for name, m in (("exclude", self.exclude), ("truth", self.truth)):
            sub = m[users]
            rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
            out[f"{name}_rows"] = torch.from_numpy(rows.astype(np.int64))
            out[f"{name}_cols"] = torch.from_numpy(sub.indices.astype(np.int64))
        return out


class _OneStep(Dataset):
    """One item per epoch: for models (ALS, popularity) whose epoch is one full sweep."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.zeros(1)


class RecsysDataModule(L.LightningDataModule):
    """Loads a dataset, splits it and computes training confidences, once.

    Args:
        dataset: an object with ``load() -> Interactions`` (``data/`` config group).
        split: a callable ``(Interactions, seed) -> Split`` (``split/`` group).
        confidence: a ``Confidence`` applied to training strengths (``confidence/`` group).
        eval_batch_size: users per evaluation batch.
        seed: seeds the split.
    """

    def __init__(
        self,
        dataset,
        split,
        confidence: Confidence,
        eval_batch_size: int = 1024,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.splitter = split
        self.confidence = confidence
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.data: Interactions | None = None
        self.split: Split | None = None
        self.train_confidence: sp.csr_matrix | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.split is not None:
            return
        data = self.dataset.load()
        if data.nnz == 0:
            raise EmptyDataError(f"dataset {getattr(self.dataset, 'name', '?')} is empty")
        log.info("loaded %r", data)
        self.data = data
        self.split = self.splitter(data, self.seed)
        self.train_confidence = self.confidence.matrix(self.split.train.matrix)
        s = self.split
        log.info(
            "split %s: train %d, validation %d, test %d interactions",
            getattr(self.splitter, "name", "?"),
            s.train.nnz,
            s.val.nnz,
            s.test.nnz,
        )
        for stage_name, part in (("validation", s.val), ("test", s.test)):
            n_eval = int((np.diff(part.matrix.indptr) > 0).sum())
            log.info(
                "%s: %d users evaluated, %d users skipped (no %s items)",
                stage_name,
                n_eval,
                data.n_users - n_eval,
                stage_name,
            )

    # -- shapes and ids -------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.data.n_users

    @property
    def n_items(self) -> int:
        return self.data.n_items

    @property
    def has_validation(self) -> bool:
        return self.split.val.nnz > 0

    # -- loaders --------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        return DataLoader(_OneStep(), batch_size=None)

    def _eval_loader(self, truth: sp.csr_matrix, exclude: sp.csr_matrix) -> DataLoader:
        return DataLoader(EvalBatches(truth, exclude, self.eval_batch_size), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.split.val.matrix, self.split.train.matrix)

    def test_dataloader(self) -> DataLoader:
        exclude = (self.split.train.matrix + self.split.val.matrix).tocsr()
        exclude.sort_indices()
        return self._eval_loader(self.split.test.matrix, exclude)
