"""Matrix factorization with the BPR loss (Rendle et al. 2009)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys.data.training_data import TrainingData
from recsys.distributed import world_and_rank
from recsys.errors import ConfigError
from recsys.models.base import FactorModel, required_propensity
from recsys.models.contrastive import ccl_loss, ccl_loss_gathered
from recsys.models.gathered import gathered_scores
from recsys.models.sampling import TripleSampler
from recsys.models.training import (
    LR_SCHEDULES,
    EpochStep,
    check_optimizer,
    make_optimizer,
    seed_rank_stream,
    with_schedule,
)


def _scores(u, i, x_uj, neg_penalty, b_i, b_j):
    """x_ui, x_uj and the squared norms of the positives' (|u|^2 + |i|^2) and negatives'
    parameters, with the item biases added where there are any."""
    x_ui = (u * i).sum(1)
    penalty = u.pow(2).sum(1) + i.pow(2).sum(1)
    if b_i is None:
        return x_ui, x_uj, penalty, neg_penalty
    return x_ui + b_i, x_uj + b_j, penalty + b_i.pow(2), neg_penalty + b_j.pow(2)


def bpr_loss(
    u: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    b_i: torch.Tensor | None = None,
    b_j: torch.Tensor | None = None,
    regularization: float = 0.0,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """BPR loss of a batch of B positive pairs, each against n negatives.

    Shapes: ``u, i`` ``(B, k)``; ``j`` ``(B, k)`` (n = 1) or ``(B, n, k)``; ``b_i`` ``(B,)``,
    ``b_j`` ``(B,)`` or ``(B, n)``. With x_ui = u . i + b_i, the loss is the mean over b of

        mean_j [-log sigmoid(x_ui - x_uj)] + regularization * (|u|^2 + |i|^2 + b_i^2
        + mean_j (|j|^2 + b_j^2)),

    which for n = 1 is Rendle et al.'s per-triple criterion. ``pair_weight`` ``(B,)``
    multiplies each pair's ranking term (inverse-propensity weights 1 / theta_i).
    """
    if j.dim() == 2:
        j = j.unsqueeze(1)
        b_j = None if b_j is None else b_j.unsqueeze(1)
    x_uj, neg_penalty = torch.einsum("bk,bnk->bn", u, j), j.pow(2).sum(2)
    return _per_pair_bpr(u, i, x_uj, neg_penalty, b_i, b_j, regularization, pair_weight)


def bpr_loss_gathered(
    u: torch.Tensor,
    i: torch.Tensor,
    items: torch.Tensor,
    neg: torch.Tensor,
    b_i: torch.Tensor | None = None,
    b_j: torch.Tensor | None = None,
    regularization: float = 0.0,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``bpr_loss`` with each pair's negatives given as rows ``neg`` ``(B, n)`` of the item
    table ``items`` ``(N, k)`` (``j = items[neg]``): the same loss within float rounding,
    scored by ``gathered_scores`` without building the ``(B, n, k)`` gather."""
    x_uj, neg_penalty = gathered_scores(u, items, neg)
    return _per_pair_bpr(u, i, x_uj, neg_penalty, b_i, b_j, regularization, pair_weight)


def _per_pair_bpr(u, i, x_uj, neg_penalty, b_i, b_j, regularization, pair_weight):
    """``bpr_loss`` from the negatives' scores u . j and squared norms |j|^2, ``(B, n)``."""
    x_ui, x_uj, penalty, neg_penalty = _scores(u, i, x_uj, neg_penalty, b_i, b_j)
    ranking = -F.logsigmoid(x_ui.unsqueeze(1) - x_uj).mean(1)
    if pair_weight is not None:
        ranking = ranking * pair_weight
    return (ranking + regularization * (penalty + neg_penalty.mean(1))).mean()


def bpr_loss_shared(
    u: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    mask: torch.Tensor,
    b_i: torch.Tensor | None = None,
    b_j: torch.Tensor | None = None,
    regularization: float = 0.0,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``bpr_loss`` with negatives shared by the batch: ``u, i`` ``(B, k)``, ``j`` ``(S, k)``,
    ``b_i`` ``(B,)``, ``b_j`` ``(S,)``, ``mask`` ``(B, S)`` bool (False: leave that pair and
    negative out). Each pair's means over negatives run over its kept negatives only.

    Or shared by groups: ``j`` ``(G, S, k)`` and ``b_j`` ``(G, S)``, the B pairs in G
    consecutive groups of B / G, group g scored against ``j[g]``."""
    if j.dim() == 3:
        groups, size = j.shape[0], u.shape[0] // j.shape[0]
        x_uj = torch.bmm(u.view(groups, size, -1), j.transpose(1, 2)).reshape(u.shape[0], -1)
        neg_penalty = j.pow(2).sum(2).repeat_interleave(size, dim=0)  # (B, S)
        b_j = None if b_j is None else b_j.repeat_interleave(size, dim=0)
    else:
        x_uj, neg_penalty = u @ j.T, j.pow(2).sum(1)
    x_ui, x_uj, penalty, neg_penalty = _scores(u, i, x_uj, neg_penalty, b_i, b_j)
    keep = mask.to(u.dtype)
    count = keep.sum(1).clamp(min=1)
    ranking = (F.softplus(x_uj - x_ui.unsqueeze(1)) * keep).sum(1) / count
    if pair_weight is not None:
        ranking = ranking * pair_weight
    kept_penalty = keep @ neg_penalty if neg_penalty.dim() == 1 else (keep * neg_penalty).sum(1)
    return (ranking + regularization * (penalty + kept_penalty / count)).mean()


LOSSES = ("bpr", "ccl")


def check_pair_settings(
    batch_size: int,
    n_negatives: int,
    negative_groups: int,
    loss: str,
    margin: float,
    negative_weight: float,
) -> None:
    """The checks of the sampling and loss settings shared by the models trained on sampled
    pairs (BPR, LightGCN): ValueError or ConfigError saying which setting to change."""
    if n_negatives < 1:
        raise ValueError(f"model.n_negatives must be at least 1, got {n_negatives}")
    if negative_groups < 1 or batch_size % negative_groups:
        raise ValueError(
            f"model.negative_groups ({negative_groups}) must divide model.batch_size ({batch_size})"
        )
    if loss not in LOSSES:
        raise ConfigError(f"model.loss must be one of {LOSSES}, got {loss!r}")
    if not -1 <= margin < 1:
        raise ConfigError(f"model.margin is a cosine's margin, in [-1, 1); got {margin}")
    if negative_weight < 0:
        raise ConfigError(f"model.negative_weight must be >= 0, got {negative_weight}")


def draw_pairs(sampler: TripleSampler, h) -> tuple:
    """One batch of training pairs for the settings ``h`` (a model's hparams):
    ``(users, positives, negatives, mask)``, mask None for per-pair negatives (see
    ``TripleSampler.sample`` and ``sample_shared``)."""
    if h.shared_negatives:
        return sampler.sample_shared(
            h.batch_size, h.n_negatives, groups=h.get("negative_groups", 1)
        )
    return (*sampler.sample(h.batch_size, n_negatives=h.n_negatives), None)


def pair_loss(
    h,
    u: torch.Tensor,
    i: torch.Tensor,
    items: torch.Tensor,
    neg: torch.Tensor,
    mask: torch.Tensor | None,
    b_i: torch.Tensor | None = None,
    b_j: torch.Tensor | None = None,
    regularization: float = 0.0,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss ``h.loss`` (``bpr``: ``bpr_loss`` / ``bpr_loss_shared``; ``ccl``:
    ``recsys.models.contrastive.ccl_loss``, no biases) of pairs drawn by ``draw_pairs``:
    negatives ``items[neg]``, rows of the item table ``items`` ``(N, k)``; ``b_j`` the
    negatives' biases, shaped as ``neg``. Several negatives per pair are scored without
    building their ``(B, n, k)`` gather (``gathered_scores``)."""
    ccl = h.get("loss", "bpr") == "ccl"
    if mask is None and neg.dim() == 2:
        if ccl:
            return ccl_loss_gathered(
                u, i, items, neg, h.margin, h.negative_weight, regularization, pair_weight
            )
        return bpr_loss_gathered(u, i, items, neg, b_i, b_j, regularization, pair_weight)
    j = items[neg]
    if ccl:
        return ccl_loss(u, i, j, h.margin, h.negative_weight, mask, regularization, pair_weight)
    if mask is not None:
        return bpr_loss_shared(u, i, j, mask, b_i, b_j, regularization, pair_weight)
    return bpr_loss(u, i, j, b_i, b_j, regularization, pair_weight)


class BPR(FactorModel):
    """Users' and items' embeddings (and item biases) trained on sampled (u, i, j) triples,
    a training pair (u, i) against a negative item j, with the BPR loss (``bpr_loss``).

    Sampling runs in batches on the model's device. One epoch = ``samples_per_epoch``
    positive pairs (default: one per training interaction) in batches of ``batch_size``, each
    pair against ``n_negatives`` negatives (the loss averages over them). With
    ``shared_negatives`` the pairs of a batch share one draw of ``n_negatives`` distinct
    items (``bpr_loss_shared``; a negative that is a training item of the pair's user is left
    out for that pair instead of redrawn): the same expected loss, scored by one matrix
    product, so hundreds of negatives per pair cost little more than one on a CPU. With
    ``negative_groups`` G > 1 the batch's pairs form G groups, each with its own draw (G =
    ``batch_size`` is one draw per pair, with the batched product's speed): between shared
    and per-pair negatives in how often each item is a negative.

    Args:
        factors: embedding size k.
        lr, optimizer (``adam``, ``adagrad``, ``sgd``, ``hogwild``), regularization: training.
            ``hogwild`` (CPU only) is per-triple SGD on all threads without locks, as in
            implicit's BPR (kernel ``bpr_cpu.sgd_epoch``; implicit draws negatives by
            ``popularity``): the fastest on a CPU, for one negative per pair and no
            correction; with more than one thread, runs with the same seed differ slightly
            (concurrent updates).
        batch_size: positive pairs per optimizer step.
        samples_per_epoch: positive pairs per epoch; None = number of training interactions.
        n_negatives: negatives drawn for each positive pair (1 = classic BPR; BARS's tuned
            MF-BPR on gowalla uses 300).
        shared_negatives: one draw of negatives per batch, shared by its pairs (see above).
        negative_groups: with ``shared_negatives``, the number of groups of the batch's pairs
            that each share a draw (divides ``batch_size``; 1 = the whole batch).
        correction: ``none`` or ``ipw``: each pair's ranking term weighted by 1 / theta_i of
            its positive item (unbiased BPR, Saito 2020; theta from the ``propensity`` config,
            clipped at its floor).
        negatives: ``uniform`` or ``popularity`` (in proportion to training popularity).
        reject_seen: redraw negatives the user interacted with.
        item_bias: learn a bias per item.
        init_std: standard deviation of the normal initialization.
        lr_schedule: ``constant``, or ``cosine``: lr (1 + cos(pi t / T)) / 2 at step t of
            the run's T steps (down to 0 at the end of ``trainer.max_epochs``).
        loss: ``bpr``, or ``ccl``: (1 - cos(u, i)) + w / |N| sum_j max(0, cos(u, j) - m) per
            pair (SimpleX; use many negatives, e.g. ``shared_negatives`` with 1,000); scores
            are then cosines cos(u, i) (no item biases).
        margin: m of ``ccl``, in [-1, 1).
        negative_weight: w of ``ccl``.
    """

    samples_per_rank = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        lr: float = 0.01,
        optimizer: str = "adam",
        regularization: float = 1e-5,
        batch_size: int = 4096,
        samples_per_epoch: int | None = None,
        n_negatives: int = 1,
        shared_negatives: bool = False,
        negative_groups: int = 1,
        negatives: str = "uniform",
        reject_seen: bool = True,
        item_bias: bool = False,
        init_std: float = 0.1,
        correction: str = "none",
        lr_schedule: str = "constant",
        loss: str = "bpr",
        margin: float = 0.9,
        negative_weight: float = 150.0,
    ) -> None:
        super().__init__(n_users, n_items)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"model.lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}"
            )
        if correction not in ("none", "ipw"):
            raise ValueError(f"model.correction must be 'none' or 'ipw', got {correction!r}")
        check_optimizer(optimizer, lr, extra=("hogwild",))
        if optimizer == "hogwild" and (
            n_negatives != 1 or shared_negatives or correction != "none"
        ):
            raise ValueError(
                "model.optimizer=hogwild takes one negative per pair and no correction "
                "(n_negatives=1, shared_negatives=false, correction=none)"
            )
        check_pair_settings(batch_size, n_negatives, negative_groups, loss, margin, negative_weight)
        if loss == "ccl" and (item_bias or optimizer == "hogwild"):
            raise ConfigError(
                "model.loss=ccl scores cosines: it takes no item biases and no hogwild "
                "(set model.item_bias=false and model.optimizer=adam)"
            )
        self.save_hyperparameters(logger=False)
        self.user_emb = nn.Parameter(torch.randn(n_users, factors) * init_std)
        self.item_emb = nn.Parameter(torch.randn(n_items, factors) * init_std)
        self.item_bias = nn.Parameter(torch.zeros(n_items)) if item_bias else None
        self.sampler: TripleSampler | None = None
        self._theta: np.ndarray | None = None
        self.automatic_optimization = optimizer != "hogwild"

    def prepare(self, data: TrainingData) -> None:
        """Takes the training pairs (``seen``), and the propensities for ``correction=ipw``."""
        super().prepare(data)
        ipw = self.hparams.correction == "ipw"
        self._theta = required_propensity(data, "model.correction=ipw") if ipw else None

    def on_fit_start(self) -> None:
        super().on_fit_start()
        h = self.hparams
        if h.optimizer == "hogwild" and self.device.type != "cpu":
            raise ValueError(
                f"model.optimizer=hogwild runs on the CPU, the model is on {self.device}; "
                "use model.optimizer=adam on a GPU"
            )
        if world_and_rank()[0] > 1 and h.optimizer == "hogwild":
            raise ValueError("model.optimizer=hogwild runs in one process; not with trainer=ddp")
        seed_rank_stream()  # several processes: each its own stream of pairs
        self.sampler = TripleSampler(self.seen, self.device, h.negatives, h.reject_seen)
        self._pairs32 = None
        self._inv_theta = None
        if self._theta is not None:
            self._inv_theta = torch.from_numpy(1.0 / self._theta).float().to(self.device)

    def steps_per_epoch(self) -> int:
        if self.hparams.optimizer == "hogwild":
            return 1  # the whole epoch is one kernel call
        n = self.hparams.samples_per_epoch or self.seen.nnz
        return max(1, math.ceil(n / self.hparams.batch_size))

    def _hogwild_epoch(self) -> None:
        from recsys.models.bpr_cpu import sgd_epoch

        h, s = self.hparams, self.sampler
        n = h.samples_per_epoch or s.nnz
        if self._pairs32 is None:  # int32 copies where they fit: half the memory traffic
            small = s.nnz < 2**31 and self.n_items < 2**31 and self.n_users < 2**31
            kind = np.int32 if small else np.int64
            self._pairs32 = tuple(a.numpy().astype(kind) for a in (s.users, s.items, s.indptr))
        empty = torch.empty(0)
        loss, skipped = sgd_epoch(
            *self._pairs32,
            self.user_emb.detach().numpy(),
            self.item_emb.detach().numpy(),
            (empty if self.item_bias is None else self.item_bias.detach()).numpy(),
            h.lr,
            h.regularization,
            n,
            h.reject_seen,
            int(torch.randint(2**31 - 1, ()).item()),  # follows the run's seed
            h.negatives == "popularity",
        )
        self.log_train("train/loss", loss / max(n - skipped, 1))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        if self.hparams.optimizer == "hogwild":
            self.optimizers().step(closure=self._hogwild_epoch)
            return None
        h, b = self.hparams, self.item_bias
        users, pos, neg, mask = draw_pairs(self.sampler, h)
        loss = pair_loss(
            h,
            self.user_emb[users],
            self.item_emb[pos],
            self.item_emb,
            neg,
            mask,
            None if b is None else b[pos],
            None if b is None else b[neg],
            h.regularization,
            None if self._inv_theta is None else self._inv_theta[pos],
        )
        self.log_train("train/loss", loss, prog_bar=True)
        return loss

    def divergence_hint(self) -> str:
        lr = self.hparams.lr
        optimizer = self.hparams.optimizer
        return (
            f"model.lr={lr:g} is likely too high for model.optimizer={optimizer} (try {lr / 10:g})"
        )

    def configure_optimizers(self):
        h = self.hparams
        if h.optimizer == "hogwild":
            return EpochStep(list(self.parameters()))
        optimizer = make_optimizer(h.optimizer, self.parameters(), h.lr)
        if h.lr_schedule == "constant":
            return optimizer
        return with_schedule(optimizer, h.lr_schedule, int(self.trainer.estimated_stepping_batches))

    def user_table(self, users: torch.Tensor | None = None) -> torch.Tensor:
        x = self.user_emb if users is None else self.user_emb[users]
        return F.normalize(x, dim=1) if self.hparams.get("loss") == "ccl" else x

    def item_table(self) -> torch.Tensor:
        y = self.item_emb
        return F.normalize(y, dim=1) if self.hparams.get("loss") == "ccl" else y

    def item_biases(self) -> torch.Tensor | None:
        return self.item_bias
