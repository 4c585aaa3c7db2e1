"""Metrics that need item statistics of the training part: propensity-weighted accuracy and
popularity bias. Per user, from the ``(B, k)`` top-k list.

Notation as in ``metrics``: ``h_j`` hit at rank j, ``T`` the user's relevant (held-out) items.
``theta_i`` is the item propensity (``recsys.data.propensity``), ``w_i = 1 / theta_i``;
``n_i`` the number of training users of item i, ``m`` the number of training users.

IPS metrics (Yang et al. 2018) weight each hit's gain by ``w_i``; SNIPS metrics (as Saito et
al.'s code) by the self-normalised ``w~_i = w_i |T| / sum_{t in T} w_t``, so that the weights
of the user's relevant items average 1:

- ``ips_recall@k = sum_j h_j w_j / |T|``,      ``snips_recall@k = sum_j h_j w_j / sum_T w``;
- ``ips_dcg@k = sum_j h_j w_j / log2(j + 1) / |T|`` (dcg averaged over the relevant items,
  as Yang et al.), ``snips_dcg@k = sum_j h_j w_j / log2(j + 1) / sum_T w``;
- ``ips_ndcg@k = sum_j h_j w_j / log2(j + 1) / IDCG`` with IDCG = sum_{j <= min(k, |T|)}
  1 / log2(j + 1) (ndcg with weighted gains), ``snips_ndcg@k`` the same with ``w~``.
- ``dcg@k = sum_j h_j / log2(j + 1) / |T|``: the unweighted version of the two above.

Popularity bias (Abdollahpouri et al. 2019; Zhou et al. 2010), over the valid list items:

- ``arp@k``: mean of ``n_i`` over the list (average recommendation popularity);
- ``aplt@k``: share of list items in the long tail, i.e. outside the head (the most popular
  items that together hold the first ``head_share`` of training interactions);
- ``novelty@k``: mean self-information ``-log2(max(n_i, 1) / m)``;
- ``recall_head@k``, ``recall_mid@k``, ``recall_tail@k``: recall over the relevant items of
  one popularity bucket (head: the first 20% of training interactions, tail: the last 20%,
  mid: between; ``buckets``); NaN for a user with no relevant item in the bucket, and the
  mean runs over the users with one;
- ``recall_new@k``: recall over the relevant items that are new, i.e. have no training
  interaction (cold items); NaN for a user with none, the mean over the users with one;
- ``gini@k`` (catalogue): Gini index of the exposure e_i (lists item i is in) over all items,
  ``sum_i (2 i - n - 1) e_(i) / (n sum_i e_i)``, e sorted ascending: 0 = equal exposure,
  close to 1 = all exposure on one item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recsys.evaluation.metrics import _discounts

WEIGHTED = (
    "dcg",
    "ips_recall",
    "ips_dcg",
    "ips_ndcg",
    "snips_recall",
    "snips_dcg",
    "snips_ndcg",
)
LIST = ("arp", "aplt", "novelty")
BUCKETS = ("recall_head", "recall_mid", "recall_tail")
NEW_ITEMS = ("recall_new",)
CATALOGUE = ("gini",)
ALL = WEIGHTED + LIST + BUCKETS + NEW_ITEMS + CATALOGUE
SKIP_NAN = BUCKETS + NEW_ITEMS  # means over the users for whom the metric is defined


@dataclass
class ItemStatistics:
    """Per-item tensors the metrics read, all ``(n_items,)``: ``weight`` w_i = 1 / theta_i,
    ``popularity`` n_i, ``self_information`` -log2(max(n_i, 1) / m), ``long_tail`` (bool),
    ``bucket`` (0 head, 1 mid, 2 tail), ``new`` (bool: no training interaction)."""

    weight: torch.Tensor
    popularity: torch.Tensor
    self_information: torch.Tensor
    long_tail: torch.Tensor
    bucket: torch.Tensor
    new: torch.Tensor

    @classmethod
    def build(
        cls,
        popularity: np.ndarray,
        n_users: int,
        propensity: np.ndarray | None = None,
        head_share: float = 0.2,
        buckets: tuple[float, float] = (0.2, 0.8),
    ) -> ItemStatistics:
        pop = np.asarray(popularity, dtype=np.float64)
        theta = np.ones_like(pop) if propensity is None else np.asarray(propensity, np.float64)
        if theta.shape != pop.shape or np.any(theta <= 0):
            raise ValueError("propensities must be positive, one per item")
        return cls(
            weight=torch.from_numpy(1.0 / theta),
            popularity=torch.from_numpy(pop),
            self_information=torch.from_numpy(-np.log2(np.maximum(pop, 1.0) / max(n_users, 1))),
            long_tail=torch.from_numpy(popularity_bucket(pop, (head_share, 1.0)) > 0),
            bucket=torch.from_numpy(popularity_bucket(pop, buckets)),
            new=torch.from_numpy(pop == 0),
        )

    def to(self, device: torch.device) -> ItemStatistics:
        return ItemStatistics(**{k: v.to(device) for k, v in vars(self).items()})


def popularity_bucket(popularity: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """Bucket of each item (int64): items sorted by popularity, descending (ties by index),
    fill bucket 0 until they hold ``cuts[0]`` of all interactions, bucket 1 until
    ``cuts[1]``, and so on. An item belongs to the bucket in which its interactions start."""
    pop = np.asarray(popularity, dtype=np.float64)
    order = np.lexsort((np.arange(len(pop)), -pop))
    total = pop.sum()
    before = (np.cumsum(pop[order]) - pop[order]) / (total if total > 0 else 1.0)
    out = np.empty(len(pop), dtype=np.int64)
    out[order] = np.searchsorted(np.asarray(cuts, dtype=np.float64), before, side="right")
    return out


def weighted(
    name: str,
    hits: torch.Tensor,
    n_rel: torch.Tensor,
    hit_weight: torch.Tensor,
    rel_weight_sum: torch.Tensor,
) -> torch.Tensor:
    """One of ``WEIGHTED`` per user. ``hits`` and ``hit_weight`` (w of the listed items)
    ``(B, k)``; ``n_rel`` |T| and ``rel_weight_sum`` sum_T w ``(B,)``."""
    k = hits.shape[1]
    disc = _discounts(k, hits)
    if name == "dcg":
        return (hits * disc).sum(1) / n_rel
    gain = hits * hit_weight
    if name.startswith("snips_"):
        gain = gain * (n_rel / rel_weight_sum).unsqueeze(1)
    base = name.split("_", 1)[1]
    if base == "recall":
        return gain.sum(1) / n_rel
    dcg = (gain * disc).sum(1)
    if base == "dcg":
        return dcg / n_rel
    ideal = torch.cumsum(disc, 0)[(n_rel.clamp(max=k) - 1).long()]
    return dcg / ideal


def list_metric(name: str, valid: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` ``(B, k)`` over the valid list entries (``arp``: n_i, ``aplt``:
    long-tail indicator, ``novelty``: self-information); 0 for an empty list."""
    v = valid.to(values.dtype)
    return (values * v).sum(1) / v.sum(1).clamp(min=1)


def bucket_recall(
    hits: torch.Tensor, hit_bucket: torch.Tensor, rel_per_bucket: torch.Tensor, bucket: int
) -> torch.Tensor:
    """Hits in ``bucket`` / relevant items in it; NaN where the user has none there.
    ``hit_bucket`` ``(B, k)`` bucket of each listed item, ``rel_per_bucket`` ``(B, 3)``."""
    n = rel_per_bucket[:, bucket]
    got = (hits * (hit_bucket == bucket).to(hits.dtype)).sum(1)
    return torch.where(n > 0, got / n.clamp(min=1), torch.full_like(got, float("nan")))


def gini(exposure: np.ndarray) -> float:
    """Gini index of the exposure counts ``(n_items,)``; 0 when nothing was exposed."""
    e = np.sort(np.asarray(exposure, dtype=np.float64))
    n, total = len(e), e.sum()
    if total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * e).sum() / (n * total))
