"""``python benchmarks/eval_pass.py [--dims 64 512]``: one full-ranking test pass over
gowalla's test users (the LightGCN split, ``RECSYS_DATA_DIR``), its stages timed, beside a
plain ``torch.mm`` of the same shape in the same run.

A factor model with random factors (ALS's tables; ranking cost does not depend on the
values) scores every test user against all 40,981 items in the DataModule's evaluation
batches; the Evaluator excludes training items, takes the top 20 and computes every default
metric. Alternating with the pass, ``torch.mm`` of (test users x d) by (d x items) in the
same batches, writing into one reused buffer: the machine's matrix-product throughput for
this shape. Prints medians over ``--repeats`` and the pass's share of the mm throughput."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from recsys.config import compose_run_config
from recsys.data.datamodule import RecsysDataModule
from recsys.models.als import ALS


def evaluation_pass(model, loader) -> dict:
    """What a Trainer's test loop runs, without the Trainer: the model's own test step per
    batch (scores, exclusion, top-k, metrics); returns the mean metrics."""
    model.on_test_epoch_start()
    for i, batch in enumerate(loader):
        model.test_step(batch, i)
    model._scratch = None  # as at the end of a pass
    return model.evaluator.compute(model._state, "test")


def mm_pass(user_table: torch.Tensor, item_table: torch.Tensor, batch: int) -> None:
    out = torch.empty((batch, item_table.shape[0]))
    for start in range(0, len(user_table), batch):
        part = user_table[start : start + batch]
        torch.mm(part, item_table.T, out=out[: len(part)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    out = Path(tempfile.mkdtemp())
    cfg = compose_run_config("train", ["experiment=gowalla_als"], out, root_dir=out)
    dm = RecsysDataModule.from_config(cfg)
    dm.setup("test")
    loader = dm.test_dataloader()
    batches = list(loader)  # the batches' index arrays are built once, as a Trainer caches them
    users = torch.cat([b["users"] for b in batches])
    print(f"{len(users):,} test users x {dm.n_items:,} items; batches of {dm.eval_batch_size}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print("| dims | pass (s) | torch.mm (s) | mm share of the pass | GFLOP/s pass | GFLOP/s mm |")
    print("|---|---|---|---|---|---|")
    for d in a.dims:
        torch.manual_seed(0)
        model = ALS(dm.n_users, dm.n_items, factors=d)
        model.eval()
        table = model.user_factors[users].contiguous()
        ours, mm = [], []
        for _ in range(a.repeats):
            t = time.perf_counter()
            evaluation_pass(model, batches)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            mm_pass(table, model.item_factors, dm.eval_batch_size)
            mm.append(time.perf_counter() - t)
        o, m = statistics.median(ours), statistics.median(mm)
        gflop = 2 * len(users) * dm.n_items * d / 1e9
        print(f"| {d} | {o:.2f} ({min(ours):.2f}-{max(ours):.2f}) | {m:.2f} "
              f"({min(mm):.2f}-{max(mm):.2f}) | {m / o:.2f} | {gflop / o:.0f} | {gflop / m:.0f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
