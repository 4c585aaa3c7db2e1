"""What the entry points share: config location, building objects, writing run outputs."""

from __future__ import annotations

import functools
import json
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from recsys.data import cache
from recsys.data.datamodule import RecsysDataModule
from recsys.errors import RecsysError
from recsys.models.base import RecommenderModule

log = logging.getLogger(__name__)

# Lightning 2.6 calls a torch API that torch deprecated; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")
DATA_KEYS = ("seed", "data", "filter", "split", "confidence", "propensity", "evaluator")
"""Config sections that define the data a model is evaluated on; stored in checkpoints."""


def user_errors(func: Callable) -> Callable:
    """Print a RecsysError as one line on stderr and exit with status 2, no traceback; also
    one raised, or a ValueError about a bad argument, while Hydra builds an object of the
    config (Hydra wraps those in an InstantiationException)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RecsysError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        except InstantiationException as e:
            if not isinstance(e.__cause__, RecsysError | ValueError):
                raise
            print(f"error: {e.__cause__}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


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


def build_datamodule(cfg: DictConfig) -> RecsysDataModule:
    """The DataModule of ``cfg``'s data, filter, split and confidence groups, set up.

    With ``data_cache`` true (the default) the processed split is cached under
    ``paths.cache_dir``, keyed by the data, filter and split config, the seed and the
    source files' sizes and times."""
    dataset = hydra.utils.instantiate(cfg.data)
    filter_cfg = cfg.get("filter")
    cache_path = None
    if cfg.get("data_cache", False) and cfg.get("paths") and cfg.paths.get("cache_dir"):
        keyed = {
            k: OmegaConf.to_container(cfg[k], resolve=True) if k in cfg else None
            for k in ("data", "filter", "split")
        }
        keyed["seed"] = cfg.seed
        sources = dataset.source_files() if hasattr(dataset, "source_files") else []
        key = cache.cache_key(keyed, sources)
        name = getattr(dataset, "name", "data")
        cache_path = Path(cfg.paths.cache_dir) / f"{name}-{key}.npz"
    dm = RecsysDataModule(
        dataset=dataset,
        split=hydra.utils.instantiate(cfg.split),
        confidence=hydra.utils.instantiate(cfg.confidence),
        filter=hydra.utils.instantiate(filter_cfg) if filter_cfg else None,
        eval_batch_size=cfg.evaluator.batch_size,
        seed=cfg.seed,
        cache_path=cache_path,
        propensity=hydra.utils.instantiate(cfg.propensity) if cfg.get("propensity") else None,
    )
    dm.setup("fit")
    return dm


def write_outputs(
    model: RecommenderModule, dm: RecsysDataModule, output_dir: str | Path
) -> dict[str, float]:
    """Write ``metrics.json`` and ``per_user_metrics.parquet`` (per user: id, training
    interactions ``n_train``, test items ``n_test``, metrics) of the last test into
    ``output_dir``; return the test metrics."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics = model.metrics["test"]
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    per_user = dict(model.per_user["test"])
    users = per_user.pop("user")
    n_train = np.diff(dm.split.train.matrix.indptr)[users]  # for comparisons by segment
    frame = pd.DataFrame({"user": np.asarray(dm.user_ids)[users], "n_train": n_train, **per_user})
    frame.to_parquet(output_dir / "per_user_metrics.parquet", index=False)
    log.info("test metrics:\n%s", format_metrics(metrics))
    return metrics


def format_metrics(metrics: dict[str, float]) -> str:
    """The metrics one per line, then the user segments (``.../hist_<segment>``) as a table
    with one column per segment."""
    plain = {k: v for k, v in metrics.items() if "/hist_" not in k}
    width = max(map(len, plain))
    lines = [f"  {k:<{width}}  {v:.6f}" for k, v in plain.items()]
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if "/hist_" in key:
            name, segment = key.rsplit("/hist_", 1)
            rows.setdefault(name, {})[segment] = value
    if rows:
        segments = list(dict.fromkeys(s for r in rows.values() for s in r))
        width = max(map(len, rows))
        lines.append(f"  by training interactions of the user:\n  {'':<{width}}  "
                     + "  ".join(f"{s:>9}" for s in segments))  # fmt: skip
        for name, r in rows.items():
            count = name.endswith("/users")
            cells = (
                f"{'':>9}" if s not in r else f"{int(r[s]):9d}" if count else f"{r[s]:9.4f}"
                for s in segments
            )
            lines.append(f"  {name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def data_config(cfg: DictConfig) -> dict:
    """The unresolved sections of ``cfg`` that rebuild its data (``DATA_KEYS``)."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=False) if k != "seed" else cfg[k]
        for k in DATA_KEYS
    }
