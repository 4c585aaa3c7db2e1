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
            "recommendations for new users need fold-in from their items"
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


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="recommend")
@user_errors
def main(cfg: DictConfig) -> None:
    users = list(cfg.users) if isinstance(cfg.users, ListConfig | list) else [cfg.users]
    model = load_model(cfg.ckpt_path)
    lines = [json.dumps(r) for r in recommend(model, users, cfg.k, cfg.exclude_seen)]
    if cfg.output:
        Path(cfg.output).write_text("\n".join(lines) + "\n")
        print(f"wrote top-{cfg.k} for {len(lines)} users to {cfg.output}", file=sys.stderr)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
