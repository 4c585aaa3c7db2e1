"""Where the configs live, composing them outside a Hydra app, and the sections of a run's
config that define its data (stored in checkpoints)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parent / "configs")  # a link to ./configs in a clone
DATA_KEYS = ("seed", "data", "filter", "split", "confidence", "propensity", "evaluator")
"""Config sections that define the data a model is evaluated on; stored in checkpoints."""


@contextmanager
def nested_run():
    """Compose and run another config (``compose_run_config``) inside a running Hydra app
    (e.g. ``recsys-simulate`` training a block): the app's Hydra state is set aside for the
    block and put back after it."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    outer = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    outer_cfg = HydraConfig.instance().cfg
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        if outer is not None:
            GlobalHydra.instance().initialize(outer)
        HydraConfig.instance().cfg = outer_cfg


def compose_run_config(
    name: str, overrides: list[str], output_dir: Path | str, root_dir: Path | str | None = None
) -> DictConfig:
    """``configs/<name>.yaml`` composed with ``overrides`` (Hydra's compose API, outside a
    Hydra app), writing into ``output_dir``: what ``recsys-train`` would run, for callers
    that run several configurations in one process (sweeps, tests). ``root_dir`` replaces
    ``paths.root_dir`` (the working directory: logs, data cache) when given."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.runtime.cwd = str(output_dir)
        cfg.hydra.job.num = 0
        if root_dir is not None:
            cfg.paths.root_dir = str(root_dir)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def data_config(cfg: DictConfig) -> dict:
    """The unresolved sections of ``cfg`` that rebuild its data (``DATA_KEYS``)."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=False) if k != "seed" else cfg[k]
        for k in DATA_KEYS
    }
