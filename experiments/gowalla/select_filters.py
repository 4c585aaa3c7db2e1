"""``python experiments/gowalla/select_filters.py [N_USERS] [OVERRIDES...]``: choose GF-CF's
and BSPM's settings on a validation part carved from gowalla's training part (never the test
part), and print the validation recall@20 / ndcg@20 of every grid point, best last.

The run's data is ``recsys-train experiment=gowalla_bspm split.val_ratio=0.1`` (seed 42)
plus OVERRIDES; N_USERS validation users (default 3072, drawn with seed 0) are scored. Every
grid point's scores are linear combinations of a few vectors per user, computed once:
x P~^j (j = 0..5) and, per rank k, i_k P~^j (j = 0..4), with i_k = x D^-1/2 V_k V_k^T D^1/2:

- GF-CF: x P~ + alpha i_k;
- BSPM with one Euler blur step of length T_b, b = (1 - T_b) x + T_b x P~, and one RK4
  sharpening step of length h from y0 = b + beta i_k (early merge):
  y0 Q(h P~), Q(z) = 1 - z + z^2/2 - z^3/6 + z^4/24.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from recsys.config import compose_run_config
from recsys.data.datamodule import RecsysDataModule
from recsys.evaluation.metrics import ndcg, recall
from recsys.models.graph_filters import BSPM

RANKS = (256, 448, 640)
ALPHAS = (0.1, 0.2, 0.3, 0.5, 0.8)  # GF-CF's alpha
BETAS = (0.1, 0.2, 0.3)  # BSPM's beta
BLUR_TIMES = (0.8, 1.0, 1.2)
SHARPEN_TIMES = (1.5, 2.0, 2.5, 3.0, 3.5)
K = 20


def main(n_users: int, overrides: list[str]) -> None:
    cfg = compose_run_config(
        "train", ["experiment=gowalla_bspm", "split.val_ratio=0.1", *overrides], "/tmp/unused"
    )
    dm = RecsysDataModule.from_config(cfg)
    dm.setup("fit")
    val = dm.held_out("val").matrix.tocsr()
    model = BSPM(dm.n_users, dm.n_items, ideal_rank=max(RANKS))
    started = time.perf_counter()
    saved = Path(f"select_filters_svd_{max(RANKS)}.pt")  # the SVD of this split, reused
    if saved.exists():
        model.prepare(dm.training_data)
        model.ideal_vectors, model.item_scale = torch.load(saved)
    else:
        model.fit(dm.training_data)
        torch.save((model.ideal_vectors, model.item_scale), saved)
    print(f"fit (rank-{max(RANKS)} SVD): {time.perf_counter() - started:.0f} s", flush=True)
    vectors = model.ideal_vectors
    users = np.flatnonzero(np.diff(val.indptr) > 0)
    users = np.sort(np.random.default_rng(0).choice(users, min(n_users, len(users)), False))
    sums: dict[tuple, np.ndarray] = {}
    started = time.perf_counter()
    for start in range(0, len(users), 1024):
        batch = torch.as_tensor(users[start : start + 1024])
        sub = model.seen[batch.numpy()].tocoo()
        x = model._rows(sub.row, sub.col, len(batch))  # (n_items, B)
        xp = [x]
        for _ in range(5):
            xp.append(model.linear(xp[-1]))
        ip = {}
        for k in RANKS:
            model.ideal_vectors = vectors[:, :k]
            ip[k] = [model.ideal(x)]
            for _ in range(4):
                ip[k].append(model.linear(ip[k][-1]))
        truth = val[batch.numpy()]
        for key, scores in grid(xp, ip):
            hits, n_rel = judge(scores.T, sub, truth)
            total = sums.setdefault(key, np.zeros(2))
            total += [recall(hits, n_rel).sum().item(), ndcg(hits, n_rel).sum().item()]
        done = min(start + 1024, len(users))
        print(f"{done} of {len(users)} users, {time.perf_counter() - started:.0f} s", flush=True)
    rows = sorted(sums.items(), key=lambda kv: kv[1][0])
    for key, (r, n) in rows:
        print(f"{key}: val recall@20 {r / len(users):.4f} ndcg@20 {n / len(users):.4f}")


def grid(xp: list[torch.Tensor], ip: dict[int, list[torch.Tensor]]):
    """(setting, scores (n_items, B)) for every grid point."""
    for k, alpha in itertools.product(RANKS, ALPHAS):
        yield ("gf_cf", f"rank={k}", f"alpha={alpha}"), xp[1] + alpha * ip[k][0]
    for h in SHARPEN_TIMES:
        c = [(-h) ** j / math.factorial(j) for j in range(5)]  # Q's coefficients
        xq = [sum(c[j] * xp[j + shift] for j in range(5)) for shift in (0, 1)]  # x Q, x P~ Q
        iq = {k: sum(c[j] * ip[k][j] for j in range(5)) for k in RANKS}
        for tb in BLUR_TIMES:
            blur = (1 - tb) * xq[0] + tb * xq[1]
            for k, beta in itertools.product(RANKS, BETAS):
                key = ("bspm", f"rank={k}", f"beta={beta}", f"blur_time={tb}",
                       f"sharpen_time={h}")  # fmt: skip
                yield key, blur + beta * iq[k]


def judge(scores: torch.Tensor, seen, truth) -> tuple[torch.Tensor, torch.Tensor]:
    """Hits ``(B, K)`` of the top-K of ``scores`` ``(B, n_items)`` with the training items
    ``seen`` (COO of the batch) excluded, against the validation items ``truth`` (CSR of the
    batch), and the number of validation items per user ``(B,)``."""
    scores = scores.index_put((torch.as_tensor(seen.row), torch.as_tensor(seen.col)),
                              torch.tensor(-torch.inf))  # fmt: skip
    top = torch.topk(scores, K).indices
    relevant = torch.from_numpy(truth.toarray() > 0)
    hits = relevant.gather(1, top).float()
    return hits, torch.from_numpy(np.diff(truth.indptr).astype(np.float32))


if __name__ == "__main__":
    args = sys.argv[1:]
    n = int(args.pop(0)) if args and args[0].isdigit() else 3072
    main(n, args)
