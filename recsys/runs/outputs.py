"""A run's result files, written atomically (a temporary name in the same folder, then a
rename): a crash or a full disk never leaves a half-written file under the final name."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.evaluation.report import format_metrics

log = logging.getLogger(__name__)


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """``text`` into ``path``, atomically."""
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def write_outputs(
    metrics: dict[str, float],
    per_user: dict[str, np.ndarray],
    user_ids: np.ndarray,
    n_train: np.ndarray,
    output_dir: str | Path,
) -> dict[str, float]:
    """Write ``metrics.json`` and ``per_user_metrics.parquet`` into ``output_dir``: per
    evaluated user (``per_user["user"]``, row indices) the external id, the training
    interactions ``n_train``, the test items ``n_test`` and every metric. Returns ``metrics``."""
    output_dir = Path(output_dir)
    write_text(output_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    per_user = dict(per_user)
    users = per_user.pop("user")
    frame = pd.DataFrame(
        {"user": np.asarray(user_ids)[users], "n_train": np.asarray(n_train)[users], **per_user}
    )
    write_atomically(
        output_dir / "per_user_metrics.parquet", lambda tmp: frame.to_parquet(tmp, index=False)
    )
    log.info("test metrics:\n%s", format_metrics(metrics))
    return metrics
