"""The cosine contrastive loss (CCL) of SimpleX (Mao et al. 2021), with many negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recsys.models.gathered import gathered_scores


def ccl_loss(
    u: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    margin: float = 0.9,
    negative_weight: float = 150.0,
    mask: torch.Tensor | None = None,
    regularization: float = 0.0,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cosine contrastive loss of a batch of B positive pairs (u, i), each against its
    negatives N (users are rows). With cos(a, b) = a . b / (|a| |b|), the loss is the mean
    over the batch of

        (1 - cos(u, i)) + w / |N| * sum_{j in N} max(0, cos(u, j) - m)
        + regularization * (|u|^2 + |i|^2 + mean_{j in N} |j|^2),

    with w = ``negative_weight`` and m = ``margin`` (SimpleX on gowalla: m = 0.9, w = 150,
    1,000 negatives). ``pair_weight`` ``(B,)`` multiplies each pair's two cosine terms.

    Shapes: ``u, i`` ``(B, k)``; per-pair negatives ``j`` ``(B, k)`` (one each) or
    ``(B, n, k)``; or, with ``mask`` ``(B, S)`` bool (False: leave that pair and negative
    out, and average over the kept ones only), negatives shared by the batch ``j`` ``(S, k)``
    or by G consecutive groups of B / G pairs ``j`` ``(G, S, k)``.
    """
    un, in_ = F.normalize(u, dim=-1), F.normalize(i, dim=-1)
    positive = 1 - (un * in_).sum(1)
    jn = F.normalize(j, dim=-1)
    norms = j.pow(2).sum(-1) if regularization else None  # |j|^2 per negative
    if mask is None:
        if j.dim() == 2:
            jn, norms = jn.unsqueeze(1), None if norms is None else norms.unsqueeze(1)
        cos_neg = torch.einsum("bk,bnk->bn", un, jn)
        count = torch.full_like(positive, cos_neg.shape[1])
    elif j.dim() == 3:
        groups, size = j.shape[0], u.shape[0] // j.shape[0]
        cos_neg = torch.bmm(un.view(groups, size, -1), jn.transpose(1, 2)).reshape(len(u), -1)
        norms = None if norms is None else norms.repeat_interleave(size, dim=0)
    else:
        cos_neg = un @ jn.T
    if mask is not None:
        count = mask.sum(1).clamp(min=1).to(u.dtype)
    return _ccl_total(u, i, positive, cos_neg, count, norms, mask, margin, negative_weight,
                      regularization, pair_weight)  # fmt: skip


def ccl_loss_gathered(
    u: torch.Tensor,
    i: torch.Tensor,
    items: torch.Tensor,
    neg: torch.Tensor,
    margin: float = 0.9,
    negative_weight: float = 150.0,
    regularization: float = 0.0,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``ccl_loss`` with each pair's negatives given as rows ``neg`` ``(B, n)`` of the item
    table ``items`` ``(N, k)`` (``j = items[neg]``): the same loss within float rounding,
    without building the ``(B, n, k)`` gather: ``gathered_scores`` gives u/|u| . j and
    |j|^2, and cos(u, j) = u/|u| . j / sqrt(max(|j|^2, 1e-24)) (``F.normalize``'s rule)."""
    un, in_ = F.normalize(u, dim=-1), F.normalize(i, dim=-1)
    positive = 1 - (un * in_).sum(1)
    dots, squares = gathered_scores(un, items, neg)
    cos_neg = dots / squares.clamp_min(1e-24).sqrt()  # finite gradients at |j| = 0 too
    count = torch.full_like(positive, neg.shape[1])
    return _ccl_total(u, i, positive, cos_neg, count, squares, None, margin, negative_weight,
                      regularization, pair_weight)  # fmt: skip


def _ccl_total(u, i, positive, cos_neg, count, norms, mask, margin, negative_weight,
               regularization, pair_weight):  # fmt: skip
    """``ccl_loss`` from the positives' 1 - cos(u, i) ``(B,)``, the negatives' cosines
    ``(B, n)`` or ``(B, S)``, each pair's count of negatives ``(B,)`` and (with a
    regularization) the negatives' |j|^2: ``(B, n)``, ``(B, S)`` or ``(S,)``."""
    hinge = F.relu(cos_neg - margin)
    if mask is not None:
        hinge = hinge.masked_fill(~mask, 0)
    ranking = positive + negative_weight * hinge.sum(1) / count
    if pair_weight is not None:
        ranking = ranking * pair_weight
    if not regularization:
        return ranking.mean()
    if mask is None:
        neg_penalty = norms.sum(1)
    elif norms.dim() == 1:  # shared by the batch: (B, S) @ (S,)
        neg_penalty = mask.to(u.dtype) @ norms
    else:
        neg_penalty = (norms * mask).sum(1)
    penalty = u.pow(2).sum(1) + i.pow(2).sum(1) + neg_penalty / count
    return (ranking + regularization * penalty).mean()
