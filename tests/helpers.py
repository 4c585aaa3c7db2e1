"""Shared test helpers: composing configs the way the entry points do."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from recsys.runner import compose_run_config

SMALL_DATA = [
    "data.n_users=300",
    "data.n_items=200",
    "data.mean_interactions=20",
]


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """``configs/<name>.yaml`` composed with ``overrides``, writing into ``output_dir``."""
    return compose_run_config(name, overrides, output_dir, root_dir=output_dir)
