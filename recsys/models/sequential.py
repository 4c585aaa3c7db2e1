"""What the sequential models (SASRec, GRU4Rec) share: each user's time-ordered item sequence,
padded windows of it, training batches, their losses, and the base class.

Sequences. User u's sequence s_u = (s_1, ..., s_n) is their training items in order of
timestamp (``data.train.timestamps``), ties kept in column order (a stable sort). Items are
stored shifted by one: 0 is padding, item i is token i + 1. A window is the last ``max_len``
tokens, aligned to the right (``align="right"``: padding first, SASRec) or to the left
(``align="left"``: padding last, GRU4Rec). Training on a sequence of n >= 2 items predicts
s_{t+1} from (s_1, ..., s_t) at every position t of its last window.

Order of a folded-in history. ``score_folded(rows, cols, conf, n_users)`` reads each user's
items in the order their entries appear in ``cols`` (the oldest first, the current item
last); confidences are ignored. Callers must pass histories in time order.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from recsys.data.interactions import Interactions
from recsys.data.training_data import TrainingData
from recsys.errors import ConfigError
from recsys.models.base import RecommenderModule
from recsys.models.training import check_optimizer, make_optimizer, seed_rank_stream

LOSSES = ("bce", "ce", "bpr_max")


# -- sequences --------------------------------------------------------------------------------
def item_sequences(train: Interactions, where: str = "model") -> tuple[np.ndarray, np.ndarray]:
    """``(indptr (n_users + 1,), items (nnz,))``: user u's items ``items[indptr[u]:indptr[u+1]]``
    (column indices) ordered by timestamp, ties in column order. ConfigError without
    timestamps (``where`` names the setting in the message)."""
    if train.timestamps is None:
        raise ConfigError(
            f"{where} orders each user's items by time, and the training data has no "
            "timestamps: choose a dataset with timestamps (e.g. data=ml_latest_small)"
        )
    rows = train.rows()
    order = np.lexsort((np.arange(train.nnz), train.timestamps, rows))  # stable by (row, t)
    indptr = np.asarray(train.matrix.indptr, dtype=np.int64)
    return indptr, np.asarray(train.matrix.indices, dtype=np.int64)[order]


def sequences_of_entries(
    rows: np.ndarray, cols: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, items)`` of entries (user ``rows[j]`` had item ``cols[j]``), each user's
    items in the order of their entries."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    return indptr, np.asarray(cols, dtype=np.int64)[order]


def windows(
    indptr: np.ndarray, items: np.ndarray, users: np.ndarray, length: int, align: str = "right"
) -> np.ndarray:
    """``(B, length)`` int64 tokens (item + 1; 0 padding) of the last ``length`` items of each
    user's sequence, aligned ``right`` (padding first) or ``left`` (padding last)."""
    users = np.asarray(users, dtype=np.int64)
    ends = indptr[users + 1]
    n = np.minimum(ends - indptr[users], length)
    out = np.zeros((len(users), length), dtype=np.int64)
    row = np.repeat(np.arange(len(users)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # 0..n_b-1 within each row
    src = np.repeat(ends - n, n) + k
    col = k + (np.repeat(length - n, n) if align == "right" else 0)
    out[row, col] = items[src] + 1
    return out


def training_pairs(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(inputs, targets, valid)`` ``(B, L)`` from windows ``(B, L + 1)``: the token at each
    position and the next one; ``valid`` where both are items."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    return inputs, targets, (inputs > 0) & (targets > 0)


# -- losses -----------------------------------------------------------------------------------
def bce_loss(
    h: torch.Tensor, emb: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """SASRec's loss: with r_t(j) = h_t . e_j, the mean over valid positions t of
    -log sigmoid(r_t(pos_t)) - log(1 - sigmoid(r_t(neg_t))).

    Shapes: ``h`` ``(B, L, d)`` hidden states; ``emb`` ``(n_items + 1, d)`` output embeddings
    by token; ``pos``, ``neg`` ``(B, L)`` tokens; ``valid`` ``(B, L)`` bool."""
    h = h[valid]
    r_pos = (h * emb[pos[valid]]).sum(-1)
    r_neg = (h * emb[neg[valid]]).sum(-1)
    return (F.softplus(-r_pos) + F.softplus(r_neg)).mean()


def ce_loss(h: torch.Tensor, emb: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor):
    """Cross-entropy over all items: the mean over valid positions t of
    -log softmax_j(h_t . e_j)[pos_t], j over the n_items items (not the padding token).
    Shapes as ``bce_loss``'s."""
    logits = h[valid] @ emb[1:].T
    return F.cross_entropy(logits, pos[valid] - 1)


def bpr_max_loss(
    h: torch.Tensor,
    emb: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
    valid: torch.Tensor,
    reg: float = 1.0,
) -> torch.Tensor:
    """BPR-max (Hidasi & Karatzoglou 2018) against S negatives shared by the batch: with
    r_i = h_t . e_{pos_t}, r_j = h_t . e_j and s_j = softmax_j(r_j) over the negatives, the
    mean over valid positions of -log sum_j s_j sigmoid(r_i - r_j) + reg sum_j s_j r_j^2.

    Shapes: ``neg`` ``(S,)`` tokens, the rest as ``bce_loss``'s."""
    h = h[valid]
    r_i = (h * emb[pos[valid]]).sum(-1, keepdim=True)
    r_j = h @ emb[neg].T
    s = torch.softmax(r_j, dim=1)
    ranking = -torch.log((s * torch.sigmoid(r_i - r_j)).sum(1) + 1e-24)
    return (ranking + reg * (s * r_j.pow(2)).sum(1)).mean()


# -- the base class ---------------------------------------------------------------------------
class SequentialModel(RecommenderModule):
    """A model of the next item given the items so far (users are rows). Subclasses set
    ``align`` and implement ``hidden(tokens) -> (B, L, d)`` (the state after each position of
    windows ``(B, L)``), ``last_hidden(tokens) -> (B, d)`` (after the last item) and
    ``output_embeddings() -> (n_items + 1, d)``; scores are h . e_j.

    ``score(users)``: scores of the next item after each training user's whole sequence
    (its last ``max_len`` items). ``score_folded``: the same after a given history, in the
    order of ``cols`` within each row (see the module). One epoch: every user with >= 2
    training items once, in random order, in batches of ``batch_size`` (under several
    processes each draws its own order and takes its share of the steps).
    """

    align = "right"
    samples_per_rank = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        max_len: int,
        loss: str,
        lr: float,
        optimizer: str,
        weight_decay: float,
        batch_size: int,
        n_negatives: int,
    ) -> None:
        super().__init__(n_users, n_items)
        if loss not in LOSSES:
            raise ValueError(f"model.loss must be one of {LOSSES}, got {loss!r}")
        check_optimizer(optimizer, lr)
        for name, value in (("max_len", max_len), ("batch_size", batch_size),
                            ("n_negatives", n_negatives)):  # fmt: skip
            if value < 1:
                raise ValueError(f"model.{name} must be at least 1, got {value}")
        # the sequences travel in the checkpoint (the training items' CSR has lost the order)
        self.register_data_buffer("seq_indptr", torch.zeros(n_users + 1, dtype=torch.int64))
        self.register_data_buffer("seq_items", torch.zeros(0, dtype=torch.int64))
        self._cache: tuple[torch.Tensor, np.ndarray, np.ndarray] | None = None
        self._trainable: np.ndarray | None = None
        self._order: torch.Tensor | None = None

    def prepare(self, data: TrainingData) -> None:
        """Takes each user's time-ordered training items (needs timestamps)."""
        super().prepare(data)
        self.set_sequences(*item_sequences(data.train, f"model={type(self).__name__.lower()}"))

    def set_sequences(self, indptr: np.ndarray, items: np.ndarray) -> None:
        """The training sequences ``(indptr, items)`` (see ``item_sequences``)."""
        device = self.seq_indptr.device
        self.seq_indptr = torch.as_tensor(indptr, dtype=torch.int64, device=device)
        self.seq_items = torch.as_tensor(items, dtype=torch.int64, device=device)
        self._trainable = np.flatnonzero(np.diff(indptr) >= 2)

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """The training sequences ``(indptr, items)`` as numpy arrays."""
        if self._cache is None or self._cache[0] is not self.seq_items:
            indptr, items = self.seq_indptr.cpu().numpy(), self.seq_items.cpu().numpy()
            self._cache = (self.seq_items, indptr, items)
        return self._cache[1], self._cache[2]

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self._trainable is None or not len(self._trainable):
            raise ConfigError(
                f"model={type(self).__name__.lower()} learns from users with at least two "
                "training items, and the training data has none: use a split that keeps "
                "longer histories"
            )
        seed_rank_stream()

    def steps_per_epoch(self) -> int:
        n = 0 if self._trainable is None else len(self._trainable)
        return max(1, math.ceil(n / self.hparams.batch_size))

    def training_batch(self, step: int) -> torch.Tensor:
        """``(B, max_len + 1)`` windows of step ``step``'s users (a new order at step 0)."""
        if step == 0 or self._order is None:
            self._order = torch.randperm(len(self._trainable))
        b = self.hparams.batch_size
        users = self._trainable[self._order[step * b : (step + 1) * b].numpy()]
        if not len(users):  # more steps than batches (several processes): start again
            users = self._trainable[self._order[:b].numpy()]
        indptr, items = self.sequences()
        tokens = windows(indptr, items, users, self.hparams.max_len + 1, self.align)
        return torch.from_numpy(tokens).to(self.device)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        inputs, targets, valid = training_pairs(self.training_batch(batch_idx))
        h = self.hidden(inputs)
        loss = self.sequence_loss(h, targets, valid)
        self.log_train("train/loss", loss, prog_bar=True)
        return loss

    def sequence_loss(self, h: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor):
        """The configured loss (``bce_loss``, ``ce_loss`` or ``bpr_max_loss``) of hidden
        states ``h`` ``(B, L, d)`` against ``targets`` ``(B, L)``; negatives drawn uniformly
        over all items (one per position for bce, ``n_negatives`` shared ones for bpr_max)."""
        loss, emb = self.hparams.loss, self.output_embeddings()
        if loss == "ce":
            return ce_loss(h, emb, targets, valid)
        if loss == "bce":
            neg = torch.randint(1, self.n_items + 1, targets.shape, device=h.device)
            return bce_loss(h, emb, targets, neg, valid)
        neg = torch.randint(1, self.n_items + 1, (self.hparams.n_negatives,), device=h.device)
        return bpr_max_loss(h, emb, targets, neg, valid, self.hparams.get("bpr_max_reg", 1.0))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        h = self.hparams
        opt = make_optimizer(h.optimizer, self.parameters(), h.lr)
        for group in opt.param_groups:
            group["weight_decay"] = h.weight_decay
        return opt

    # -- to implement ---------------------------------------------------------------------
    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def last_hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def output_embeddings(self) -> torch.Tensor:
        raise NotImplementedError

    # -- scores ---------------------------------------------------------------------------
    def scores_of_windows(self, tokens: np.ndarray) -> torch.Tensor:
        """``(B, n_items)`` next-item scores after windows ``(B, max_len)``."""
        h = self.last_hidden(torch.from_numpy(tokens).to(self.device))
        return h @ self.output_embeddings()[1:].T

    def score(self, users: torch.Tensor) -> torch.Tensor:
        indptr, items = self.sequences()
        tokens = windows(indptr, items, users.cpu().numpy(), self.hparams.max_len, self.align)
        return self.scores_of_windows(tokens)

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        indptr, items = sequences_of_entries(rows.cpu().numpy(), cols.cpu().numpy(), n_users)
        tokens = windows(indptr, items, np.arange(n_users), self.hparams.max_len, self.align)
        return self.scores_of_windows(tokens)

    def divergence_hint(self) -> str:
        return f"lower the learning rate (model.lr={self.hparams.lr:g})"
