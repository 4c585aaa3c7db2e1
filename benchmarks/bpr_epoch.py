"""``python benchmarks/bpr_epoch.py [--repeats 3]``: BPR on gowalla (``RECSYS_DATA_DIR``)
with 300 negatives drawn per positive pair (``experiment=gowalla_bpr
model.shared_negatives=false``: batches of 1,024 pairs, Adam), in a Lightning Trainer.

- One whole training epoch (810,128 pairs, 792 steps): the issue's target is <= 30 s.
- Side by side, alternating, ``--steps`` steps of the same run two ways: the negatives
  scored by ``gathered_scores`` (what training runs) and by the plain gather
  ``item_emb[neg]`` ``(B, n, k)`` with a batched product (what it ran before); the same
  pairs, the same loss within float rounding. Also the cosine contrastive loss (``loss=ccl``)
  with 300 per-pair negatives, both ways.
Prints medians over ``--repeats`` (min-max) and the ratio gathered / plain."""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch

import recsys.models.bpr as bpr
from recsys.config import compose_run_config
from recsys.data.datamodule import RecsysDataModule


class EpochTimer(L.Callback):
    def on_train_epoch_start(self, trainer, module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        self.seconds = time.perf_counter() - self.start


def plain_pair_loss(h, u, i, items, neg, mask, b_i=None, b_j=None, regularization=0.0,
                    pair_weight=None):  # fmt: skip
    """``bpr.pair_loss`` of per-pair negatives by the plain gather ``items[neg]``."""
    if h.loss == "ccl":
        return bpr.ccl_loss(u, i, items[neg], h.margin, h.negative_weight, mask,
                            regularization, pair_weight)  # fmt: skip
    return bpr.bpr_loss(u, i, items[neg], b_i, b_j, regularization, pair_weight)


def epoch_seconds(cfg, dm, plain: bool) -> float:
    """One training epoch of a fresh model (the run's seed), no validation or test."""
    L.seed_everything(0, verbose=False)
    model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu",
                        callbacks=[timer])  # fmt: skip
    real = bpr.pair_loss
    bpr.pair_loss = plain_pair_loss if plain else real
    try:
        trainer.fit(model, datamodule=dm)
    finally:
        bpr.pair_loss = real
    return timer.seconds


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=50, help="steps of the side-by-side part")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    out = Path(tempfile.mkdtemp())
    base = ["experiment=gowalla_bpr", "model.shared_negatives=false", "logger=[]"]
    configs = {}
    for loss in ("bpr", "ccl"):
        extra = [] if loss == "bpr" else ["model.loss=ccl", "model.regularization=0"]
        cfg = compose_run_config("train", base + extra, out / loss, root_dir=out / loss)
        configs[loss] = cfg
    dm = RecsysDataModule.from_config(configs["bpr"])
    h = configs["bpr"].model
    print(f"# gowalla: {dm.n_users:,} users x {dm.n_items:,} items, {dm.split.train.nnz:,} "
          f"training pairs; {h.n_negatives} negatives per pair, batches of {h.batch_size}, "
          f"{h.factors} factors; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"medians of {a.repeats} (min-max)\n")  # fmt: skip
    print("| task | gathered (s) | plain gather (s) | gathered / plain |")
    print("|---|---|---|---|")
    whole = [epoch_seconds(configs["bpr"], dm, plain=False) for _ in range(a.repeats)]
    print(f"| BPR, one whole epoch ({dm.split.train.nnz:,} pairs) | {spread(whole)} | | |",
          flush=True)  # fmt: skip
    pairs = a.steps * h.batch_size
    for loss, cfg in configs.items():
        cfg.model.samples_per_epoch = pairs
        ours, plain = [], []
        for _ in range(a.repeats):  # alternating
            ours.append(epoch_seconds(cfg, dm, plain=False))
            plain.append(epoch_seconds(cfg, dm, plain=True))
        ratio = statistics.median(ours) / statistics.median(plain)
        print(f"| {loss.upper()}, {a.steps} steps | {spread(ours)} | {spread(plain)} | "
              f"{ratio:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
