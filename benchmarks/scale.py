"""``python benchmarks/scale.py [--users 138000 --items 27000 --mean 145]``: an ML-20M-sized
synthetic run through the framework, stage by stage, with each stage's wall time and peak
resident memory (VmHWM, reset before each stage through /proc/self/clear_refs; Linux).

Stages: generate (``data=synthetic``), split (random 80/10/10) and confidence; ALS (64
factors, CG, 2 epochs); full-ranking test evaluation of the ALS model over every test user;
BPR (64 factors, 1 epoch of one sampled pair per training interaction, 300 shared negatives).
Prints a Markdown table (the one in benchmarks/README.md)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import hydra
import lightning as L

from recsys.config import compose_run_config
from recsys.data.datamodule import RecsysDataModule


def _peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _current_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


class Stage:
    """Times a stage and reports its peak resident memory (the high-water mark reset at the
    start)."""

    rows: list[tuple[str, float, float, float]] = []

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self.start, self.before = time.perf_counter(), _current_gib()
        return self

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.start
        Stage.rows.append((self.name, seconds, self.before, _peak_gib()))
        print(f"{self.name}: {seconds:.1f} s, peak {_peak_gib():.2f} GiB", flush=True)


def _trainer(epochs: int) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, limit_val_batches=0, accelerator="cpu")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=138_000)
    p.add_argument("--items", type=int, default=27_000)
    p.add_argument("--mean", type=float, default=145.0, help="mean interactions per user")
    p.add_argument("--als-epochs", type=int, default=2)
    a = p.parse_args()
    out = Path(tempfile.mkdtemp())
    overrides = [
        f"data.n_users={a.users}", f"data.n_items={a.items}", f"data.mean_interactions={a.mean}",
        "split.val_ratio=0.1", "split.test_ratio=0.1", "confidence=binary", "data_cache=false",
        "model.factors=64", "eval_batch_size=1024", "evaluator.history_buckets=null",
    ]  # fmt: skip
    cfg = compose_run_config("train", overrides, out, root_dir=out)
    with Stage("generate, split, confidence"):
        dm = RecsysDataModule.from_config(cfg)
    nnz = dm.split.train.nnz + dm.split.val.nnz + dm.split.test.nnz
    print(f"{dm.n_users:,} users x {dm.n_items:,} items, {nnz:,} interactions", flush=True)
    L.seed_everything(0, verbose=False)
    als = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items,
                                  compute_loss=False)  # fmt: skip
    als.evaluator = hydra.utils.instantiate(cfg.evaluator)
    trainer = _trainer(a.als_epochs)
    with Stage(f"ALS, 64 factors, {a.als_epochs} epochs"):
        trainer.fit(als, datamodule=dm)
    with Stage("evaluate ALS (full ranking, test users)"):
        trainer.test(als, datamodule=dm, verbose=False)
    print({k: round(v, 4) for k, v in als.metrics["test"].items() if "@20" in k}, flush=True)
    del als, trainer
    bpr_cfg = compose_run_config(
        "train", [*overrides, "model=bpr", "model.n_negatives=300", "model.shared_negatives=true",
                  "model.batch_size=4096"], out, root_dir=out,
    )  # fmt: skip
    bpr = hydra.utils.instantiate(bpr_cfg.model, n_users=dm.n_users, n_items=dm.n_items)
    with Stage("BPR, 64 factors, 1 epoch (300 shared negatives)"):
        _trainer(1).fit(bpr, datamodule=dm)
    print(f"\n{dm.n_users:,} users x {dm.n_items:,} items, {nnz:,} interactions; "
          f"{os.cpu_count()} CPUs\n")  # fmt: skip
    print("| stage | wall time | resident before | peak resident |")
    print("|---|---|---|---|")
    for name, seconds, before, peak in Stage.rows:
        print(f"| {name} | {seconds:.0f} s | {before:.2f} GiB | {peak:.2f} GiB |")


if __name__ == "__main__":
    main()
