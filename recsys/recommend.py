"""``recsys-recommend ckpt_path=... users=[...] k=10``: top-k items from a checkpoint alone
(``recsys.serving``)."""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.errors import RecsysError
from recsys.files import write_text
from recsys.models.checkpoint import load_model
from recsys.serving import recommend, recommend_from_history


def _listed(value) -> list:
    return list(value) if isinstance(value, ListConfig | list) else [value]


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="recommend")
@user_errors
def main(cfg: DictConfig) -> None:
    model = load_model(cfg.ckpt_path, trusted_packages=list(cfg.get("trusted_packages") or []))
    if cfg.get("history") is not None:  # a new user, from their items
        items = _listed(cfg.history)
        features = cfg.get("features")
        if features is not None and not isinstance(features, DictConfig):
            raise RecsysError("features must map a feature name to values: features={dwell:[...]}")
        features = None if features is None else OmegaConf.to_container(features)
        result = recommend_from_history(
            model, items, cfg.k, cfg.get("strengths"), cfg.get("confidences"), features
        )
        lines = [json.dumps({"history": items, **result})]
    else:
        if cfg.get("users") is None:
            raise RecsysError("give users=[...] (known users) or history=[...] (a new user)")
        lines = [
            json.dumps(r) for r in recommend(model, _listed(cfg.users), cfg.k, cfg.exclude_seen)
        ]
    if cfg.output:
        write_text(cfg.output, "\n".join(lines) + "\n")
        print(f"wrote top-{cfg.k} for {len(lines)} users to {cfg.output}", file=sys.stderr)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
