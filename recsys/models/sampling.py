"""Batched sampling of training triples on the model's device (no per-sample Python)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class TripleSampler:
    """Samples (user, positive item, negative item) triples from a ``(n_users, n_items)``
    training matrix, held on one device.

    Positives: training interactions drawn uniformly (so users appear in proportion to their
    activity). Negatives: items drawn ``uniform``-ly or in proportion to their training
    ``popularity``; with ``reject_seen`` a negative the user interacted with is redrawn (up to
    ``max_rounds`` times; the few left after that are kept).
    """

    def __init__(
        self,
        train: sp.csr_matrix,
        device: torch.device | str,
        negatives: str = "uniform",
        reject_seen: bool = True,
        max_rounds: int = 10,
    ) -> None:
        if negatives not in ("uniform", "popularity"):
            raise ValueError(f"negatives must be 'uniform' or 'popularity', got {negatives!r}")
        m = train.tocsr()
        m.sort_indices()
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        self.n_items = m.shape[1]
        self.users = torch.from_numpy(rows.astype(np.int64)).to(device)
        self.items = torch.from_numpy(m.indices.astype(np.int64)).to(device)
        self.keys = self.users * self.n_items + self.items  # sorted: CSR order
        self.negatives, self.reject_seen, self.max_rounds = negatives, reject_seen, max_rounds
        self.device = device

    @property
    def nnz(self) -> int:
        return len(self.users)

    def _negatives(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        if self.negatives == "uniform":
            return torch.randint(self.n_items, (n,), device=self.device, generator=generator)
        pick = torch.randint(self.nnz, (n,), device=self.device, generator=generator)
        return self.items[pick]

    def seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Bool mask: is (users[j], items[j]) a training interaction?"""
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp(max=self.nnz - 1)
        return self.keys[pos] == keys

    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pick = torch.randint(self.nnz, (n,), device=self.device, generator=generator)
        users, pos = self.users[pick], self.items[pick]
        neg = self._negatives(n, generator)
        if self.reject_seen:
            for _ in range(self.max_rounds):
                bad = self.seen(users, neg)
                n_bad = int(bad.sum())
                if n_bad == 0:
                    break
                neg[bad] = self._negatives(n_bad, generator)
        return users, pos, neg
