"""Shared test helpers: composing configs the way the entry points do."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from recsys.runner import CONFIG_DIR

SMALL_DATA = [
    "data.n_users=300",
    "data.n_items=200",
    "data.mean_interactions=20",
]


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """``configs/<name>.yaml`` composed with ``overrides``, writing into ``output_dir``."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.runtime.cwd = str(output_dir)
        cfg.paths.root_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
