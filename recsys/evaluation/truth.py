"""Ranking quality against known true preferences (simulated data): NDCG with graded gains."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys.evaluation.ranking import topk


def truth_ndcg(
    scores: torch.Tensor, truth: np.ndarray, exclude: sp.csr_matrix | None, k: int
) -> np.ndarray:
    """``(B,)`` NDCG@k of each row's ranking of ``scores`` ``(B, n_items)`` against the true
    preferences ``truth`` ``(B, n_items)`` as gains: DCG = sum over the top k of
    truth / log2(rank + 1) (ranks from 1), divided by the DCG of the k truest items. Items in
    ``exclude`` ``(B, n_items)`` (e.g. the training items) are neither ranked nor in the
    ideal list."""
    scores = scores.detach().float().cpu().clone()
    gains = torch.as_tensor(np.asarray(truth, np.float64))
    if exclude is not None:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = float("-inf")
        gains = gains.clone()
        gains[rows, cols] = float("-inf")
    items, valid = topk(scores, k)
    discount = 1.0 / torch.log2(torch.arange(2, items.shape[1] + 2, dtype=torch.float64))
    got = torch.gather(gains, 1, items).masked_fill(~valid, 0.0)
    dcg = (got * discount).sum(1)
    ideal = torch.topk(gains, items.shape[1], dim=1).values
    idcg = (ideal.masked_fill(torch.isinf(ideal), 0.0) * discount).sum(1)
    return (dcg / idcg.clamp_min(1e-300)).numpy()
