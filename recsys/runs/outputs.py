"""A run's result files, written atomically (``recsys.files``): a crash or a full disk never
leaves a half-written file under the final name."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from recsys.evaluation.report import format_metrics
from recsys.files import write_atomically, write_text

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing each checkpoint under a temporary name in its
    own folder and renaming it (Lightning's own writes to the system's temporary folder and
    moves the file, which across file systems copies it into place: a full disk then left a
    truncated checkpoint under its final name)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomically(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def write_outputs(
    metrics: dict[str, float],
    per_user: dict[str, np.ndarray],
    user_ids: np.ndarray,
    n_train: np.ndarray,
    output_dir: str | Path,
    fingerprint: dict | None = None,
    validation: dict | None = None,
) -> dict[str, float]:
    """Write ``metrics.json`` and ``per_user_metrics.parquet`` into ``output_dir``: per
    evaluated user (``per_user["user"]``, row indices) the external id, the training
    interactions ``n_train``, the test items ``n_test`` and every metric; the parquet's
    metadata (``DataFrame.attrs["data_fingerprint"]``) holds the data's ``fingerprint``, which
    ``recsys-compare`` checks; ``validation`` (the best epoch's ``val/...`` metrics and
    ``best_epoch``) goes into ``metrics.json`` after the test metrics. Returns ``metrics``."""
    output_dir = Path(output_dir)
    on_disk = {**metrics, **(validation or {})}
    write_text(output_dir / "metrics.json", json.dumps(on_disk, indent=2) + "\n")
    per_user = dict(per_user)
    users = per_user.pop("user")
    frame = pd.DataFrame(
        {"user": np.asarray(user_ids)[users], "n_train": np.asarray(n_train)[users], **per_user}
    )
    frame.attrs["data_fingerprint"] = fingerprint
    write_atomically(
        output_dir / "per_user_metrics.parquet", lambda tmp: frame.to_parquet(tmp, index=False)
    )
    log.info("test metrics:\n%s", format_metrics(metrics))
    return metrics
