"""Several processes: distributed ALS (torch.distributed, gloo on the CPU) gives the factors
of one process, and trainer=ddp trains and evaluates as one process evaluates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recsys.models import ALS
from recsys.models.als_distributed import nnz_balanced_bounds

pytestmark = pytest.mark.slow  # several processes

N_USERS, N_ITEMS, K, EPOCHS = 240, 150, 8, 4
BIN = Path(sys.executable).parent


def _confidences() -> sp.csr_matrix:
    """Random confidences with very uneven rows (a few heavy users), so that shares balanced by
    nonzeros differ from shares balanced by rows."""
    rng = np.random.default_rng(0)
    counts = np.minimum(rng.zipf(1.6, N_USERS) + 2, N_ITEMS // 2)
    rows = np.repeat(np.arange(N_USERS), counts)
    cols = np.concatenate([rng.choice(N_ITEMS, c, replace=False) for c in counts])
    data = 1 + 5 * rng.random(len(rows)).astype(np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(N_USERS, N_ITEMS))


def _fit(solver: str, conf: sp.csr_matrix) -> ALS:
    torch.manual_seed(0)
    model = ALS(N_USERS, N_ITEMS, factors=K, regularization=2.0, solver=solver,
                compute_loss=False, init_std=0.1)  # fmt: skip
    model.set_train_confidence(conf)
    for _ in range(EPOCHS):
        model.sweep()
    return model


def _worker(rank: int, world: int, init_file: str, solver: str, conf, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)  # fmt: skip
    torch.set_num_threads(1)
    model = _fit(solver, conf)
    if rank == 0:
        torch.save({"u": model.user_factors, "i": model.item_factors}, out)
    dist.destroy_process_group()


def test_nnz_balanced_bounds():
    conf = _confidences()
    bounds = nnz_balanced_bounds(conf.indptr, 3)
    per = np.diff(conf.indptr[bounds])
    assert bounds[0] == 0 and bounds[-1] == N_USERS and np.all(np.diff(bounds) >= 0)
    # each share is within one row of nnz / 3 entries, and row counts differ a lot
    assert np.all(np.abs(per - conf.nnz / 3) <= np.diff(conf.indptr).max())
    assert np.ptp(np.diff(bounds)) > 20


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_two_gloo_processes_give_the_single_process_factors(solver, tmp_path):
    conf = _confidences()
    single = _fit(solver, conf)
    out = str(tmp_path / "factors.pt")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), solver, conf, out), nprocs=2, join=True)
    got = torch.load(out)
    for name, want in (("u", single.user_factors), ("i", single.item_factors)):
        err = (got[name] - want).abs().max() / want.abs().max()
        assert err < 1e-5, f"{name} factors differ by {err:.2e} (relative)"
    assert single.user_factors.abs().max() > 0.1  # it learned something


SMALL = ["data.n_users=600", "data.n_items=300", "trainer.max_epochs=3",
         "trainer.enable_progress_bar=false", "logger=[]"]  # fmt: skip


def _cli(cmd: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / cmd), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("model", ["bpr", "wmf", "als"])
def test_ddp_with_two_cpu_processes_trains_and_evaluates_like_one(model, tmp_path):
    """recsys-train trainer=ddp (2 processes, gloo; BPR and WMF: gradients all-reduced by
    DDP; ALS: sharded half-steps): the test metrics gathered from both ranks equal a
    single-process recsys-eval of the checkpoint it tested; for ALS they also equal a
    single-process training run."""
    _cli("recsys-train", f"model={model}", "trainer=ddp", *SMALL,
         f"hydra.run.dir={tmp_path / 'ddp'}", cwd=tmp_path)  # fmt: skip
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert (tmp_path / "ddp" / "train_ddp_process_1.log").is_file()  # a second process ran
    ckpt = log.split("testing ")[1].split()[0]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    _cli("recsys-eval", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path)
    single = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    ddp_test = {k: v for k, v in ddp.items() if k.startswith("test/")}  # recsys-eval: test only
    assert ddp_test == single and ddp["test/ndcg@20"] > 0.05
    users = pd.read_parquet(tmp_path / "ddp" / "per_user_metrics.parquet")["user"]
    assert users.is_unique and len(users) == len(
        pd.read_parquet(tmp_path / "eval" / "per_user_metrics.parquet")
    )
    if model == "als":
        _cli("recsys-train", "model=als", *SMALL, f"hydra.run.dir={tmp_path / 'one'}",
             cwd=tmp_path)  # fmt: skip
        one = json.loads((tmp_path / "one" / "metrics.json").read_text())
        assert one == pytest.approx(ddp, rel=1e-5)
