"""``recsys-train``: one experiment from config (``recsys.runs.fit.train``)."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR

log = logging.getLogger(__name__)


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> float | None:
    from recsys.runs.fit import train  # torch and Lightning: seconds, not needed for --help

    value, _ = train(cfg)
    log.info("run directory: %s", Path(cfg.paths.output_dir).resolve())
    return value


if __name__ == "__main__":
    main()
