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
        self.indptr = torch.from_numpy(m.indptr.astype(np.int64)).to(device)
        self.popularity = torch.bincount(self.items, minlength=self.n_items).double()
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
        if self.users.device.type == "cpu":  # a binary search of each user's row
            from recsys.models.sampling_cpu import seen_in_rows

            return torch.from_numpy(
                seen_in_rows(self.indptr.numpy(), self.items.numpy(), users.numpy(), items.numpy())
            )
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp(max=self.nnz - 1)
        return self.keys[pos] == keys

    def sample(
        self, n: int, generator: torch.Generator | None = None, n_negatives: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` training pairs and their negatives: users and positives ``(n,)``, negatives
        ``(n,)`` when ``n_negatives`` is 1, else ``(n, n_negatives)``."""
        pick = torch.randint(self.nnz, (n,), device=self.device, generator=generator)
        users, pos = self.users[pick], self.items[pick]
        neg = self._negatives(n * n_negatives, generator)
        if self.reject_seen:
            neg_users = users.repeat_interleave(n_negatives) if n_negatives > 1 else users
            bad = torch.nonzero(self.seen(neg_users, neg)).squeeze(1)
            for _ in range(self.max_rounds):  # redraw, and check, only the rejected ones
                if len(bad) == 0:
                    break
                neg[bad] = self._negatives(len(bad), generator)
                bad = bad[self.seen(neg_users[bad], neg[bad])]
        return users, pos, (neg if n_negatives == 1 else neg.view(n, n_negatives))

    def sample_shared(
        self,
        n: int,
        n_negatives: int,
        generator: torch.Generator | None = None,
        groups: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` training pairs and ONE draw of ``n_negatives`` distinct items that all of them
        share: users and positives ``(n,)``, negatives ``(n_negatives,)``, and a bool mask
        ``(n, n_negatives)``, False where the negative is a training item of the pair's user
        (with ``reject_seen``; all True without). Shared negatives are scored with one matrix
        product instead of a gather per pair, which makes hundreds of negatives cheap.

        With ``groups`` G > 1 (dividing n), pairs g n/G ... (g+1) n/G - 1 share draw g:
        negatives ``(G, n_negatives)``, each row drawn with replacement; a repeat within a
        row is masked out for its whole group (so each pair's kept negatives are distinct)."""
        if not 1 <= n_negatives <= self.n_items:
            raise ValueError(f"n_negatives must be in 1..{self.n_items}, got {n_negatives}")
        pick = torch.randint(self.nnz, (n,), device=self.device, generator=generator)
        users, pos = self.users[pick], self.items[pick]
        if groups > 1:
            return users, pos, *self._grouped_negatives(users, n_negatives, groups, generator)
        if self.negatives == "uniform":
            perm = torch.randperm(self.n_items, device=self.device, generator=generator)
            neg = perm[:n_negatives]
        else:
            neg = torch.multinomial(self.popularity, n_negatives, False, generator=generator)
        mask = torch.ones(n, n_negatives, dtype=torch.bool, device=self.device)
        if self.reject_seen and self.users.device.type == "cpu":  # the same mask, in place
            from recsys.models.sampling_cpu import unmask_seen

            slot = torch.full((self.n_items,), -1, dtype=torch.int64)
            slot[neg] = torch.arange(n_negatives)
            unmask_seen(self.indptr.numpy(), self.items.numpy(), users.numpy(), neg.numpy(),
                        slot.numpy(), mask.numpy())  # fmt: skip
        elif self.reject_seen:
            rows, slots = self.seen_pairs(users, neg)
            mask[rows, slots] = False
        return users, pos, neg, mask

    def _grouped_negatives(
        self, users: torch.Tensor, n_negatives: int, groups: int, generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Negatives ``(G, S)`` and the mask ``(n, S)`` of ``sample_shared`` with groups."""
        n, size = len(users), len(users) // groups
        if size * groups != n:
            raise ValueError(f"groups ({groups}) must divide the pairs drawn ({n})")
        neg = self._negatives(groups * n_negatives, generator).view(groups, n_negatives)
        keys = neg + torch.arange(groups, device=self.device).unsqueeze(1) * self.n_items
        sorted_keys, order = keys.flatten().sort()
        repeat = torch.zeros(groups * n_negatives, dtype=torch.bool, device=self.device)
        repeat[order[1:]] = sorted_keys[1:] == sorted_keys[:-1]  # all but one of equal keys
        mask = (~repeat.view(groups, n_negatives)).repeat_interleave(size, dim=0)
        if self.reject_seen:  # walk the users' training rows, look each item up in its group
            row, item = self._training_items(users)
            query = item + (row // size) * self.n_items
            at = torch.searchsorted(sorted_keys, query).clamp(max=len(sorted_keys) - 1)
            hit = sorted_keys[at] == query
            mask[row[hit], order[at[hit]] % n_negatives] = False
        return neg, mask

    def seen_pairs(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions (r, s) with items[s] a training item of users[r]; ``items`` distinct.
        Walks the users' training rows (cost: their total length), not users x items."""
        slot = torch.full((self.n_items,), -1, dtype=torch.int64, device=self.device)
        slot[items] = torch.arange(len(items), device=self.device)
        row, item = self._training_items(users)
        s = slot[item]
        hit = s >= 0
        return row[hit], s[hit]

    def _training_items(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every training item of each of ``users``: positions r into ``users`` and items."""
        starts = self.indptr[users]
        lengths = self.indptr[users + 1] - starts
        row = torch.repeat_interleave(torch.arange(len(users), device=self.device), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        offset = torch.arange(len(row), device=self.device) - first[row]
        return row, self.items[starts[row] + offset]
