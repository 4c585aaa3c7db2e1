"""Item-based neighbourhood models: item-kNN and EASE (closed forms, one fitting epoch)."""

from __future__ import annotations

import logging
import os

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsys.data.interactions import row_entries
from recsys.errors import RecsysError
from recsys.evaluation import topk
from recsys.models.base import OnePassModule

log = logging.getLogger(__name__)


class ItemKNN(OnePassModule):
    """Item-kNN: score(u, j) = sum over u's training items i of S[i, j], with S keeping each
    item's ``neighbors`` most similar other items (ties: lower item index first).

    Similarities (X is the binary users x items training matrix):
      - ``cosine``: S_ij = x_i . x_j / (|x_i| |x_j| + shrink);
      - ``bm25``: S_ij = w_i . w_j with W the BM25 weighting of the items x users matrix
        (items as documents: idf over items, as implicit's BM25Recommender; ``k1``, ``b``).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        similarity: str = "cosine",
        neighbors: int = 100,
        shrink: float = 0.0,
        k1: float = 1.2,
        b: float = 0.75,
        block_items: int = 2048,
    ) -> None:
        super().__init__(n_users, n_items)
        if similarity not in ("cosine", "bm25"):
            raise ValueError("model.similarity must be 'cosine' or 'bm25'")
        self.save_hyperparameters(logger=False)
        n = min(neighbors, max(n_items - 1, 1))
        self.register_buffer("neighbor_items", torch.zeros(n_items, n, dtype=torch.int64))
        self.register_buffer("neighbor_sims", torch.zeros(n_items, n))

    def _weighted_items(self) -> tuple[sp.csr_matrix, np.ndarray | None]:
        """The items x users matrix to compare (binary, or bm25-weighted) and, for cosine,
        its row norms."""
        x = self.seen.T.tocsr().astype(np.float64)  # items x users, binary
        x.data[:] = 1.0
        h = self.hparams
        if h.similarity == "cosine":
            norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
            return x, norms
        n_docs = x.shape[0]
        idf = np.log(n_docs) - np.log1p(np.bincount(x.indices, minlength=x.shape[1]))
        lengths = np.asarray(x.sum(1)).ravel()
        norm = (1 - h.b) + h.b * lengths / max(lengths.mean(), 1e-12)
        rows = np.repeat(np.arange(n_docs), np.diff(x.indptr))
        x.data = x.data * (h.k1 + 1) / (h.k1 * norm[rows] + x.data) * idf[x.indices]
        return x, None

    def fit_epoch(self) -> None:
        x, norms = self._weighted_items()
        xt = x.T.tocsr()
        n, k = self.n_items, self.neighbor_items.shape[1]
        h = self.hparams
        top_items = np.zeros((n, k), dtype=np.int64)
        top_sims = np.zeros((n, k), dtype=np.float32)
        for start in range(0, n, h.block_items):
            stop = min(start + h.block_items, n)
            block = (x[start:stop] @ xt).toarray()
            if norms is not None:
                block /= norms[start:stop, None] * norms[None, :] + h.shrink + 1e-12
            block[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # no self
            block_t = torch.from_numpy(block.astype(np.float32))
            part, _ = topk(block_t, k)  # ties: lower item index first
            sims = torch.gather(block_t, 1, part).clamp_min(0)
            top_items[start:stop], top_sims[start:stop] = part.numpy(), sims.numpy()
        self.neighbor_items.copy_(torch.from_numpy(top_items))
        self.neighbor_sims.copy_(torch.from_numpy(top_sims))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        rows, cols, _ = row_entries(self.seen, users.cpu().numpy())
        return self._from_items(torch.from_numpy(rows), torch.from_numpy(cols), len(users))

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        """Held-out users scored from their known items (binary, as in training)."""
        return self._from_items(rows, cols, n_users)

    def _from_items(self, rows: torch.Tensor, cols: torch.Tensor, n_users: int) -> torch.Tensor:
        """``(n_users, n_items)``: row r sums S[i, :] over the items i with (r, i) in
        (rows, cols), scattered from each item's neighbour list."""
        items = cols.to(self.device, torch.int64)
        k = self.neighbor_items.shape[1]
        rows_t = rows.to(self.device, torch.int64).repeat_interleave(k)
        scores = torch.zeros((n_users, self.n_items), device=self.device)
        scores.index_put_(
            (rows_t, self.neighbor_items[items].reshape(-1)),
            self.neighbor_sims[items].reshape(-1),
            accumulate=True,
        )
        return scores


def available_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (GPU: free device memory; CPU: MemAvailable)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


class EASE(OnePassModule):
    """EASE (Steck 2019): B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1, with a zero
    diagonal; score(u) = x_u B, X the binary training matrix.

    The fit needs two dense n_items x n_items float32 matrices at once (8 n_items^2 bytes);
    when that exceeds the free memory of the device it refuses, saying how much it needs.
    """

    def __init__(self, n_users: int, n_items: int, regularization: float = 500.0) -> None:
        super().__init__(n_users, n_items)
        self.save_hyperparameters(logger=False)
        self.register_data_buffer("weights", torch.zeros(0))

    @staticmethod
    def memory_needed(n_items: int) -> int:
        return 2 * 4 * n_items * n_items

    def fit_epoch(self) -> None:
        n = self.n_items
        need, have = self.memory_needed(n), available_memory_bytes(self.device)
        if need > have:
            raise RecsysError(
                f"EASE with {n:,} items needs about {need / 2**30:.1f} GiB (two dense "
                f"{n:,} x {n:,} float32 matrices), but only {have / 2**30:.1f} GiB is free on "
                f"{self.device}; reduce the items (e.g. filter=kcore) or use model=itemknn"
            )
        x = self.seen.astype(np.float32)
        x.data[:] = 1.0
        gram = torch.from_numpy((x.T @ x).toarray()).to(self.device)
        gram.diagonal().add_(self.hparams.regularization)
        chol, info = torch.linalg.cholesky_ex(
            gram, out=(gram, torch.empty(0, dtype=torch.int32, device=gram.device))
        )
        if int(info) != 0:
            raise FloatingPointError("EASE: X^T X + lambda I is not positive definite")
        p = torch.cholesky_inverse(chol)
        del chol, gram
        if not p.is_contiguous() and p.T.is_contiguous():
            p = p.T  # LAPACK's column-major result; P is symmetric, and rows must be contiguous
        p.div_(-p.diagonal().clone())  # B_ij = -P_ij / P_jj
        p.diagonal().zero_()
        self.weights = p

    def score(self, users: torch.Tensor) -> torch.Tensor:
        # x_u B = sum of the rows of B of u's training items: an embedding-bag sum, which
        # reads only those rows (a sparse-dense product was far slower at this size)
        sub = self.seen[users.cpu().numpy()]
        items = torch.from_numpy(sub.indices.astype(np.int64)).to(self.device)
        offsets = torch.from_numpy(sub.indptr[:-1].astype(np.int64)).to(self.device)
        return F.embedding_bag(items, self.weights, offsets, mode="sum")

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        """Held-out users: x_u B from their known items (binary, as in training)."""
        rows = rows.to(self.device, torch.int64).contiguous()
        offsets = torch.searchsorted(rows, torch.arange(n_users, device=self.device))
        return F.embedding_bag(cols.to(self.device, torch.int64), self.weights, offsets, mode="sum")
