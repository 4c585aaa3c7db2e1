"""LightGCN (He et al. 2020): embeddings smoothed over the user-item graph, trained by BPR."""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys.models.base import FactorModel
from recsys.models.bpr import check_pair_settings, draw_pairs, pair_loss
from recsys.models.sampling import TripleSampler
from recsys.models.training import (
    LR_SCHEDULES,
    check_optimizer,
    make_optimizer,
    seed_rank_stream,
    with_schedule,
)


def normalized_adjacency(train: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 ``(n_users + n_items, n_users + n_items)``, float64, of the bipartite
    graph A = [[0, R], [R^T, 0]] of the binary ``(n_users, n_items)`` training matrix R
    (users first); D is A's degree matrix, and a node without edges keeps a zero row."""
    r = sp.csr_matrix(train, dtype=np.float64, copy=True)
    r.data[:] = 1.0
    a = sp.bmat([[None, r], [r.T, None]], format="csr")
    degree = np.asarray(a.sum(1)).ravel()
    scale = np.zeros_like(degree)
    np.power(degree, -0.5, out=scale, where=degree > 0)
    d = sp.diags(scale)
    return (d @ a @ d).tocsr()


class SymmetricSpMM(torch.autograd.Function):
    """``a @ x`` for a sparse ``a`` that is symmetric, differentiable in the dense ``x``: the
    gradient a^T g is computed as a g, a forward product (on a CPU, several times faster
    than torch's backward of a sparse product)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a = a
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.a, grad)


def propagate(adjacency: torch.Tensor, embeddings: torch.Tensor, layers: int) -> torch.Tensor:
    """LightGCN's final embeddings ``(N, k)``: the mean of layers 0..K, E^(l+1) = A E^(l),
    of the layer-0 ``embeddings`` ``(N, k)`` over the symmetric normalized ``adjacency``
    ``(N, N)`` (sparse), i.e. sum_l A^l E / (K + 1) (alpha_l = 1 / (K + 1))."""
    e, total = embeddings, embeddings
    for _ in range(layers):
        e = SymmetricSpMM.apply(adjacency, e)
        total = total + e
    return total / (layers + 1)


class LightGCN(FactorModel):
    """LightGCN: users' and items' layer-0 embeddings E^0 propagated over the normalized
    user-item graph A = D^-1/2 [[0, R], [R^T, 0]] D^-1/2 (R the binary training matrix, users
    first) by sparse products on the model's device; the final embeddings are the mean of
    layers 0..K (``propagate``), and score(u, i) = e_u . e_i.

    Training: BPR's pairs and losses (``recsys.models.bpr.draw_pairs``, ``pair_loss``) on the
    final embeddings of a batch, the whole graph propagated at every step, plus the paper
    code's L2 term on the batch's layer-0 embeddings: regularization * 1/2 (|e_u|^2 + |e_i|^2
    + |e_j|^2) / B (a pair's several negatives: their mean). Inference propagates once, with
    no gradients, and keeps the tables until the embeddings change (every optimizer step,
    and each validation or test pass, starts afresh). New users cannot be folded in.

    Args:
        factors: embedding size k; layers: K.
        lr, optimizer (``adam``, ``adagrad``, ``sgd``), regularization, lr_schedule: training.
        batch_size, samples_per_epoch, n_negatives, shared_negatives, negative_groups,
            negatives, reject_seen: sampling, as in ``BPR``.
        init_std: standard deviation of the normal initialization of E^0.
        loss, margin, negative_weight: ``bpr``, or ``ccl`` (cosines of the final embeddings,
            as in ``BPR``; the scores are then cosines).

    Defaults: the paper's gowalla setting (64 dims, 3 layers, Adam 0.001, 1e-4, batches of
    2,048, one negative per pair).
    """

    samples_per_rank = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        layers: int = 3,
        lr: float = 0.001,
        optimizer: str = "adam",
        regularization: float = 1e-4,
        batch_size: int = 2048,
        samples_per_epoch: int | None = None,
        n_negatives: int = 1,
        shared_negatives: bool = False,
        negative_groups: int = 1,
        negatives: str = "uniform",
        reject_seen: bool = True,
        init_std: float = 0.1,
        loss: str = "bpr",
        margin: float = 0.9,
        negative_weight: float = 150.0,
        lr_schedule: str = "constant",
    ) -> None:
        super().__init__(n_users, n_items)
        check_optimizer(optimizer, lr)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"model.lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}"
            )
        if layers < 0:
            raise ValueError(f"model.layers must be >= 0, got {layers}")
        check_pair_settings(batch_size, n_negatives, negative_groups, loss, margin, negative_weight)
        self.save_hyperparameters(logger=False)
        self.user_emb = nn.Parameter(torch.randn(n_users, factors) * init_std)
        self.item_emb = nn.Parameter(torch.randn(n_items, factors) * init_std)
        self.sampler: TripleSampler | None = None
        self._graph: tuple | None = None  # (seen matrix, device, dtype, sparse tensor)
        self._tables: tuple | None = None  # (embedding versions, users, items), inference

    # -- the graph ----------------------------------------------------------------------------
    def adjacency(self) -> torch.Tensor:
        """The normalized adjacency ``(n_users + n_items,) * 2`` as a sparse CSR tensor on
        the model's device and dtype, built from ``seen`` once (and again if they change)."""
        dtype, device = self.user_emb.dtype, self.user_emb.device
        g = self._graph
        if g is None or g[0] is not self.seen or g[1] != device or g[2] != dtype:
            a = normalized_adjacency(self.seen)
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                tensor = torch.sparse_csr_tensor(
                    torch.from_numpy(a.indptr.astype(np.int64)),
                    torch.from_numpy(a.indices.astype(np.int64)),
                    torch.from_numpy(a.data).to(dtype),
                    size=a.shape,
                    check_invariants=False,  # scipy's CSR is valid
                ).to(device)
            self._graph = g = (self.seen, device, dtype, tensor)
        return g[3]

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The final embeddings: users ``(n_users, k)`` and items ``(n_items, k)``."""
        e = propagate(
            self.adjacency(), torch.cat([self.user_emb, self.item_emb]), self.hparams.layers
        )
        return e[: self.n_users], e[self.n_users :]

    def _inference_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``propagated()`` without gradients, normalized for ``loss=ccl``; kept until the
        embeddings change in place (an optimizer step) or move."""
        key = (self.user_emb._version, self.item_emb._version, self.user_emb.device,
               self.user_emb.dtype)  # fmt: skip
        if self._tables is None or self._tables[0] != key:
            with torch.no_grad():
                users, items = self.propagated()
                if self.hparams.loss == "ccl":
                    users, items = (nn.functional.normalize(t, dim=1) for t in (users, items))
            self._tables = (key, users, items)
        return self._tables[1], self._tables[2]

    def invalidate(self) -> None:
        """Forget the inference tables (they are recomputed when next needed)."""
        self._tables = None

    # -- training -----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        h = self.hparams
        seed_rank_stream()  # several processes: each its own stream of pairs
        self.sampler = TripleSampler(self.seen, self.device, h.negatives, h.reject_seen)
        self.invalidate()

    def steps_per_epoch(self) -> int:
        n = self.hparams.samples_per_epoch or self.seen.nnz
        return max(1, math.ceil(n / self.hparams.batch_size))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        h = self.hparams
        users, pos, neg, mask = draw_pairs(self.sampler, h)
        final_users, final_items = self.propagated()
        loss = pair_loss(h, final_users[users], final_items[pos], final_items, neg, mask)
        penalty = layer0_penalty(self.user_emb[users], self.item_emb[pos], self.item_emb[neg], mask)
        loss = loss + h.regularization * penalty
        self.log_train("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.invalidate()  # the optimizer has stepped

    def on_validation_epoch_start(self) -> None:
        self.invalidate()
        super().on_validation_epoch_start()

    def on_test_epoch_start(self) -> None:
        self.invalidate()
        super().on_test_epoch_start()

    def configure_optimizers(self):
        h = self.hparams
        optimizer = make_optimizer(h.optimizer, self.parameters(), h.lr)
        if h.lr_schedule == "constant":
            return optimizer
        return with_schedule(optimizer, h.lr_schedule, int(self.trainer.estimated_stepping_batches))

    def divergence_hint(self) -> str:
        lr = self.hparams.lr
        return f"model.lr={lr:g} is likely too high (try {lr / 10:g})"

    # -- scores -------------------------------------------------------------------------------
    def user_table(self, users: torch.Tensor | None = None) -> torch.Tensor:
        table = self._inference_tables()[0]
        return table if users is None else table[users]

    def item_table(self) -> torch.Tensor:
        return self._inference_tables()[1]


def layer0_penalty(
    u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """LightGCN's L2 term on a batch's layer-0 embeddings, 1/2 (|e_u|^2 + |e_i|^2 + |e_j|^2)
    / B summed over the batch: ``u, i`` ``(B, k)``; ``j`` ``(B, k)`` or ``(B, n, k)`` (the
    mean over a pair's negatives), or with ``mask`` ``(B, S)`` shared ``(S, k)`` or grouped
    ``(G, S, k)`` negatives (the mean over each pair's kept ones)."""
    norms = j.pow(2).sum(-1)
    if mask is None:
        neg = norms if norms.dim() == 1 else norms.mean(1)
    else:
        keep = mask.to(u.dtype)
        if norms.dim() == 2:  # groups
            norms = norms.repeat_interleave(len(u) // norms.shape[0], dim=0)
        else:
            norms = norms.expand(len(u), -1)
        neg = (norms * keep).sum(1) / keep.sum(1).clamp(min=1)
    return 0.5 * (u.pow(2).sum(1) + i.pow(2).sum(1) + neg).mean()
