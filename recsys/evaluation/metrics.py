"""Ranking metrics, per user, from a ``(B, k)`` hit matrix.

Notation: ``h_j`` is 1 if the item at rank ``j`` (1-based) is relevant (a held-out test item),
``T`` is the number of relevant items of the user (``T >= 1``), ``k`` the cut-off.
Each function returns a ``(B,)`` float tensor; users are averaged afterwards.
"""

from __future__ import annotations

import torch


def _k(hits: torch.Tensor) -> int:
    return hits.shape[1]


def recall(hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:
    """recall@k = sum_j h_j / T  (as LightGCN / NGCF)."""
    return hits.sum(1) / n_rel


def recall_norm(hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:
    """recall_norm@k = sum_j h_j / min(k, T)  (Liang et al. 2018, Rendle et al.)."""
    return hits.sum(1) / n_rel.clamp(max=_k(hits))


def precision(hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:
    """precision@k = sum_j h_j / k."""
    return hits.sum(1) / _k(hits)


def _discounts(k: int, like: torch.Tensor) -> torch.Tensor:
    ranks = torch.arange(1, k + 1, device=like.device, dtype=like.dtype)
    return 1.0 / torch.log2(ranks + 1.0)


def ndcg(hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:
    """ndcg@k = DCG / IDCG with binary gains: DCG = sum_j h_j / log2(j + 1),
    IDCG = sum_{j=1}^{min(k, T)} 1 / log2(j + 1)."""
    disc = _discounts(_k(hits), hits)
    dcg = (hits * disc).sum(1)
    ideal = torch.cumsum(disc, 0)[(n_rel.clamp(max=_k(hits)) - 1).long()]
    return dcg / ideal


def map(hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:  # noqa: A001
    """map@k (average precision) = (1 / min(k, T)) * sum_j h_j * precision@j."""
    ranks = torch.arange(1, _k(hits) + 1, device=hits.device, dtype=hits.dtype)
    prec_at = torch.cumsum(hits, 1) / ranks
    return (prec_at * hits).sum(1) / n_rel.clamp(max=_k(hits))


def mrr(hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:
    """mrr@k = 1 / (rank of the first relevant item), 0 when none is in the top k."""
    ranks = torch.arange(1, _k(hits) + 1, device=hits.device, dtype=hits.dtype)
    inv = torch.where(hits > 0, 1.0 / ranks, torch.zeros_like(hits))
    return inv.max(1).values


def hit_rate(hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:
    """hit_rate@k = 1 if any relevant item is in the top k, else 0."""
    return (hits.sum(1) > 0).to(hits.dtype)


PER_USER = {
    "recall": recall,
    "recall_norm": recall_norm,
    "ndcg": ndcg,
    "precision": precision,
    "map": map,
    "mrr": mrr,
    "hit_rate": hit_rate,
}
"""Per-user metrics by name. ``coverage`` is a catalogue metric, computed by the Evaluator:
coverage@k = |union of all evaluated users' top-k lists| / n_items."""

AGGREGATE = ("coverage",)
