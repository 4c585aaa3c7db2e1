"""Training helpers shared by the models: optimizers and schedules, batches of users, sampling
streams per process, and the stand-in optimizer of models that update themselves."""

from __future__ import annotations

import torch

from recsys.distributed import world_and_rank

OPTIMIZERS = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad, "sgd": torch.optim.SGD}
LR_SCHEDULES = ("constant", "cosine")


def check_optimizer(name: str, lr: float, extra: tuple[str, ...] = ()) -> None:
    """ValueError unless ``name`` is one of OPTIMIZERS (or ``extra``) and ``lr`` > 0."""
    if name not in (*OPTIMIZERS, *extra):
        raise ValueError(f"model.optimizer must be one of {[*OPTIMIZERS, *extra]}, got {name!r}")
    if not lr > 0:
        raise ValueError(f"model.lr must be > 0, got {lr}")


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The optimizer ``name`` (a key of OPTIMIZERS); Adam runs fused (one kernel over all
    parameters), which on a CPU takes about a third less time per step than the default."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, fused=True)
    return OPTIMIZERS[name](params, lr=lr)


def with_schedule(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int):
    """What ``configure_optimizers`` returns for ``schedule``: ``constant`` (the optimizer
    alone) or ``cosine`` (lr (1 + cos(pi t / T)) / 2 at step t of the run's T steps)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"model.lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return optimizer
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def seed_rank_stream() -> None:
    """Give this process its own stream of torch's global random numbers when several
    processes train together (torch.distributed): rank r reseeds with the run's seed
    + 1_000_003 r; rank 0, and a single process, keep the run's stream unchanged."""
    _, rank = world_and_rank()
    if rank > 0:
        torch.manual_seed(torch.initial_seed() + 1_000_003 * rank)


def user_batch(step: int, order: torch.Tensor, batch_users: int) -> torch.Tensor:
    """The users of training step ``step`` of an epoch over ``order`` (a permutation of the
    users, the same in every process): batches of ``batch_users`` dealt out by rank, so that
    process r takes batches r, r + world, ... (empty when none is left)."""
    world, rank = world_and_rank()
    index = step * world + rank
    return order[index * batch_users : (index + 1) * batch_users]


def shared_order(n: int, device: torch.device) -> torch.Tensor:
    """A random permutation of ``n`` rows, rank 0's in every process."""
    order = torch.randperm(n, device=device)
    if world_and_rank()[0] > 1:
        torch.distributed.broadcast(order, src=0)
    return order


def row_positions(indptr: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stored entries of ``rows`` of a CSR matrix with ``indptr``: ``(local_row,
    position)``, local_row the index in ``rows`` and position into the CSR's data."""
    starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
    total = int(counts.sum())
    local = torch.repeat_interleave(
        torch.arange(len(rows), device=rows.device), counts, output_size=total
    )
    offsets = torch.cumsum(counts, 0) - counts
    return local, starts[local] + torch.arange(total, device=rows.device) - offsets[local]


class EpochStep(torch.optim.Optimizer):
    """A stand-in optimizer whose ``step(closure)`` just runs the closure.

    Closed-form models (ALS, popularity) compute their update themselves; running it as an
    optimizer step lets Lightning count it as one global step, which its checkpointing and
    logging rely on.
    """

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        super().__init__(tensors, {})

    @torch.no_grad()
    def step(self, closure=None):
        return closure() if closure is not None else None
