"""Running on several processes (``trainer=ddp``): ranks, and Lightning's DDP strategy for
models that synchronize themselves.

Under ``trainer=ddp`` every process loads the data; training work is shared by rank (BPR: each
rank samples its own pairs, its share of an epoch's steps; WMF: each rank its share of the
epoch's user batches, gradients all-reduced by DDP; ALS: each rank solves its share of every
half-step, ``recsys.models.als_distributed``); evaluation batches of users are dealt out by
rank and the per-user results gathered before any metric is computed, so metrics are means
over all users, whatever each rank held.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy


def world_and_rank() -> tuple[int, int]:
    """(processes, this process's rank) of torch.distributed; (1, 0) when not running."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class RecsysDDPStrategy(DDPStrategy):
    """Lightning's DDP; a model with no trainable parameter (ALS, EASE, item-kNN,
    popularity...) runs unwrapped, since DistributedDataParallel refuses such a module and
    these models synchronize themselves (or need no training step across ranks)."""

    def _setup_model(self, model: torch.nn.Module):
        if not any(p.requires_grad for p in model.parameters()):
            return model
        return super()._setup_model(model)
