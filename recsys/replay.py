"""``recsys-replay ckpt_path=... k=10``: a checkpoint's block against the "most recent articles"
block on the sessions of its event log's test period (``recsys.runs.replay.replay``)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.runs.replay import replay


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="replay")
@user_errors
def main(cfg: DictConfig) -> None:
    replay(cfg)


if __name__ == "__main__":
    main()
