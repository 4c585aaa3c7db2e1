"""``recsys-eval ckpt_path=...``: re-evaluate a checkpoint on the test part of its own data
(``recsys.runs.evaluate.evaluate``)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.runs.evaluate import evaluate


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
