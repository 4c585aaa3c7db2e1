"""Loading a trained model from a checkpoint alone, without rebuilding the dataset."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from recsys.errors import CheckpointError
from recsys.models.base import RecommenderModule


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> RecommenderModule:
    """The model saved in ``path``, with its id maps, training items and run config."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input
        raise CheckpointError(f"{path} is not a readable checkpoint: {e}") from e
    ctx = ckpt.get("recsys")
    if not ctx or "model_class" not in ctx:
        raise CheckpointError(f"{path} was not written by recsys-train (no 'recsys' section)")
    module, _, name = ctx["model_class"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls.load_from_checkpoint(path, map_location=map_location, weights_only=True)
