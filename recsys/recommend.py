"""``recsys-recommend ckpt_path=... users=[...] k=10``: top-k items from a checkpoint alone."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig

from recsys.checkpoint import load_model
from recsys.errors import RecsysError, UnknownIdError
from recsys.evaluation import topk
from recsys.models.base import RecommenderModule
from recsys.runner import CONFIG_DIR, user_errors


def user_indices(model: RecommenderModule, users: Sequence) -> np.ndarray:
    """Row indices of external user ids; ids also match by their string form (``"196"``
    finds user 196). Unknown ids raise UnknownIdError naming them."""
    by_id = {u: i for i, u in enumerate(model.user_ids)}
    by_str = {str(u): i for i, u in enumerate(model.user_ids)}
    idx, unknown = [], []
    for u in users:
        i = by_id.get(u, by_str.get(str(u)))
        (unknown if i is None else idx).append(u if i is None else i)
    if unknown:
        shown = ", ".join(map(repr, unknown[:10]))
        raise UnknownIdError(
            f"unknown user id(s) {shown}: the model was trained on {len(model.user_ids)} users "
            f"(e.g. {', '.join(map(repr, model.user_ids[:3]))}); "
            "for a new user, give their items instead: history=[...]"
        )
    return np.asarray(idx, dtype=np.int64)


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


def item_indices(model: RecommenderModule, items: Sequence) -> np.ndarray:
    """Column indices of external item ids (also by their string form); unknown ids raise
    UnknownIdError naming them."""
    by_id = {i: j for j, i in enumerate(model.item_ids)}
    by_str = {str(i): j for j, i in enumerate(model.item_ids)}
    found = [by_id.get(i, by_str.get(str(i))) for i in items]
    unknown = [i for i, j in zip(items, found) if j is None]
    if unknown:
        raise UnknownIdError(
            f"unknown item id(s) {', '.join(map(repr, unknown[:10]))}: the model knows "
            f"{len(model.item_ids)} items (e.g. {', '.join(map(repr, model.item_ids[:3]))})"
        )
    return np.asarray(found, dtype=np.int64)


def history_confidences(model: RecommenderModule, strengths: Sequence[float]) -> np.ndarray:
    """Confidences of a new user's raw strengths by the model's own confidence config (from
    its checkpoint), for the confidences that need no training statistics."""
    config = ((model.run_config or {}).get("resolved") or {}).get("confidence")
    if not config:
        return np.asarray(strengths, dtype=np.float32)
    confidence = hydra.utils.instantiate(config)
    if not callable(confidence):
        raise RecsysError(
            f"the model's confidence ({config.get('_target_')}) depends on training statistics "
            "or per-pair features; give the confidences themselves (confidences=[...])"
        )
    return confidence(np.asarray(strengths, dtype=np.float64))


def recommend_from_history(
    model: RecommenderModule,
    items: Sequence,
    k: int = 10,
    strengths: Sequence[float] | None = None,
    confidences: Sequence[float] | None = None,
) -> dict:
    """Top-k for a user the model never saw, from the items they had (external ids), folded
    in (ALS, WMF: their vector solved from the items; EASE, item-kNN: scored from them).
    ``strengths`` (default 1 each) go through the model's confidence config; or pass
    ``confidences`` directly. The history's items are not recommended."""
    if k < 1:
        raise RecsysError(f"k must be >= 1, got {k}")
    if not len(items):
        raise RecsysError("an empty history: give at least one item (or use a popularity model)")
    cols = item_indices(model, items)
    if confidences is None:
        conf = history_confidences(model, [1.0] * len(items) if strengths is None else strengths)
    else:
        conf = np.asarray(confidences, dtype=np.float32)
    if len(conf) != len(cols):
        raise RecsysError(f"{len(cols)} items but {len(conf)} strengths or confidences")
    cols, first = np.unique(cols, return_index=True)  # a repeated item counts once
    conf = torch.from_numpy(np.asarray(conf, dtype=np.float32)[first])
    cols_t = torch.from_numpy(cols)
    with torch.no_grad():
        scores = model._adjust(
            model.score_folded(torch.zeros(len(cols), dtype=torch.int64), cols_t, conf, 1)
        )
        scores[0, cols_t.to(scores.device)] = float("-inf")
        top, valid = topk(scores, k)
    picked = [int(i) for i, ok in zip(top[0].tolist(), valid[0].tolist()) if ok]
    return {
        "items": [model.item_ids[i] for i in picked],
        "scores": [float(scores[0, i]) for i in picked],
    }


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="recommend")
@user_errors
def main(cfg: DictConfig) -> None:
    model = load_model(cfg.ckpt_path)
    if cfg.get("history") is not None:  # a new user, from their items
        items = list(cfg.history) if isinstance(cfg.history, ListConfig | list) else [cfg.history]
        result = recommend_from_history(
            model, items, cfg.k, cfg.get("strengths"), cfg.get("confidences")
        )
        lines = [json.dumps({"history": items, **result})]
    else:
        if cfg.get("users") is None:
            raise RecsysError("give users=[...] (known users) or history=[...] (a new user)")
        users = list(cfg.users) if isinstance(cfg.users, ListConfig | list) else [cfg.users]
        lines = [json.dumps(r) for r in recommend(model, users, cfg.k, cfg.exclude_seen)]
    if cfg.output:
        Path(cfg.output).write_text("\n".join(lines) + "\n")
        print(f"wrote top-{cfg.k} for {len(lines)} users to {cfg.output}", file=sys.stderr)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
