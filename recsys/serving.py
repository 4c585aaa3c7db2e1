"""Top-k lists from a trained model, by external ids: for users it was trained on, and for new
users from their history (fold-in through the confidence fitted at training)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from recsys.errors import RecsysError, UnknownIdError
from recsys.evaluation import topk
from recsys.models.base import RecommenderModule


def _index(ids: list, wanted: Sequence) -> list[int | None]:
    """Positions of ``wanted`` in ``ids``; ids also match by their string form (``"196"``
    finds 196); None where absent."""
    by_id = {u: i for i, u in enumerate(ids)}
    by_str = {str(u): i for i, u in enumerate(ids)}
    return [by_id.get(u, by_str.get(str(u))) for u in wanted]


def user_indices(model: RecommenderModule, users: Sequence) -> np.ndarray:
    """Row indices of external user ids (also by their string form). Unknown ids raise
    UnknownIdError naming them."""
    found = _index(model.user_ids, users)
    unknown = [u for u, i in zip(users, found) if i is None]
    if unknown:
        shown = ", ".join(map(repr, unknown[:10]))
        raise UnknownIdError(
            f"unknown user id(s) {shown}: the model was trained on {len(model.user_ids)} users "
            f"(e.g. {', '.join(map(repr, model.user_ids[:3]))}); "
            "for a new user, give their items instead: history=[...]"
        )
    return np.asarray(found, dtype=np.int64)


def item_indices(model: RecommenderModule, items: Sequence) -> np.ndarray:
    """Column indices of external item ids (also by their string form); unknown ids raise
    UnknownIdError naming them."""
    found = _index(model.item_ids, items)
    unknown = [i for i, j in zip(items, found) if j is None]
    if unknown:
        raise UnknownIdError(
            f"unknown item id(s) {', '.join(map(repr, unknown[:10]))}: the model knows "
            f"{len(model.item_ids)} items (e.g. {', '.join(map(repr, model.item_ids[:3]))})"
        )
    return np.asarray(found, dtype=np.int64)


def recommend(
    model: RecommenderModule, users: Sequence, k: int = 10, exclude_seen: bool = True
) -> list[dict]:
    """One dict per user: ``{"user": id, "items": [ids...], "scores": [...]}``, best first."""
    if k < 1:
        raise RecsysError(f"k must be >= 1, got {k}")
    idx = user_indices(model, users)
    items, scores = model.recommend(torch.from_numpy(idx), k, exclude_seen)
    out = []
    for u, row, sc in zip(users, items.tolist(), scores.tolist()):
        keep = [j for j, i in enumerate(row) if i >= 0]
        out.append(
            {
                "user": u,
                "items": [model.item_ids[row[j]] for j in keep],
                "scores": [float(sc[j]) for j in keep],
            }
        )
    return out


def history_confidences(
    model: RecommenderModule,
    items: Sequence,
    strengths: Sequence[float] | None = None,
    features: Mapping[str, Sequence[float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(cols, confidences)`` of a new user's history: the distinct columns of ``items``
    (external ids, oldest first), in the order of each one's last entry (what a sequential
    model reads), and their confidences by the confidence fitted at training, from raw
    ``strengths`` (default 1 each) and per-pair ``features`` (e.g. ``{"dwell": [...]}``
    seconds; NaN or None: unknown). A repeated item's strengths and features add up, as
    repeated events do in training, and its ``count`` (views) is its number of entries
    unless given."""
    return confidences_at(model, item_indices(model, items), strengths, features)


def confidences_at(
    model: RecommenderModule,
    cols: np.ndarray,
    strengths: Sequence[float] | None = None,
    features: Mapping[str, Sequence[float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``history_confidences`` of a history given by column indices ``cols``."""
    cols = np.asarray(cols, dtype=np.int64)
    n = len(cols)
    strengths = np.ones(n) if strengths is None else np.asarray(strengths, dtype=np.float64)
    feats = {
        name: np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
        for name, values in (features or {}).items()
    }
    for name, values in {"strengths": strengths, **feats}.items():
        if len(values) != n:
            raise RecsysError(f"{n} items but {len(values)} values of {name}")
    distinct, group = np.unique(cols, return_inverse=True)
    summed = np.bincount(group, strengths, minlength=len(distinct))
    summed_feats = {}
    for name, values in feats.items():
        known = ~np.isnan(values)
        total = np.bincount(group[known], values[known], minlength=len(distinct))
        any_known = np.bincount(group[known], minlength=len(distinct)) > 0
        summed_feats[name] = np.where(any_known, total, np.nan)
    summed_feats.setdefault("count", np.bincount(group, minlength=len(distinct)).astype(float))
    rows = np.zeros(len(distinct), dtype=np.int64)
    conf = model.history_confidences(rows, distinct, summed, summed_feats, 1)
    last = np.zeros(len(distinct), dtype=np.int64)
    np.maximum.at(last, group, np.arange(n))
    order = np.argsort(last, kind="stable")  # time order, by each item's last entry
    return distinct[order], conf[order]


def recommend_from_history(
    model: RecommenderModule,
    items: Sequence,
    k: int = 10,
    strengths: Sequence[float] | None = None,
    confidences: Sequence[float] | None = None,
    features: Mapping[str, Sequence[float]] | None = None,
) -> dict:
    """Top-k for a user the model never saw, from the items they had (external ids, oldest
    first: sequential models read them in this order), folded in (ALS, WMF: their vector
    solved from the items; EASE, item-kNN: scored from them; SASRec, GRU4Rec: read in order).
    ``strengths`` and ``features`` (default: one event each, nothing more known) go through
    the confidence fitted at training (``history_confidences``); or pass ``confidences``
    directly, one per distinct item. The history's items are not recommended."""
    if k < 1:
        raise RecsysError(f"k must be >= 1, got {k}")
    if not len(items):
        raise RecsysError("an empty history: give at least one item (or use a popularity model)")
    if confidences is None:
        cols, conf = history_confidences(model, items, strengths, features)
    else:
        cols = item_indices(model, items)
        conf = np.asarray(confidences, dtype=np.float32)
        if len(conf) != len(cols):
            raise RecsysError(f"{len(cols)} items but {len(conf)} confidences")
        if len(np.unique(cols)) != len(cols):
            raise RecsysError("an item is given twice: give each item once with its confidence")
    cols_t = torch.from_numpy(cols)
    conf_t = torch.from_numpy(np.asarray(conf, dtype=np.float32))
    scores = model.score_history(torch.zeros(len(cols), dtype=torch.int64), cols_t, conf_t, 1)
    scores[0, cols_t.to(scores.device)] = float("-inf")
    top, valid = topk(scores, k)
    picked = [int(i) for i, ok in zip(top[0].tolist(), valid[0].tolist()) if ok]
    return {
        "items": [model.item_ids[i] for i in picked],
        "scores": [float(scores[0, i]) for i in picked],
    }
