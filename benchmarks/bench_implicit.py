"""Ours against implicit (benfred), side by side on one synthetic matrix, in one process.

    python benchmarks/bench_implicit.py                      # CPU, the README's table
    python benchmarks/bench_implicit.py --device cuda        # ours on the GPU

Times, alternating ours and implicit's on the same matrix and the same initial factors:
an ALS iteration (users then items, 3 CG steps) at each ``--factors``, a BPR epoch (one
sampled triple per training pair), and top-10 for every user with training items filtered.
Prints medians over ``--repeats``, the ratio ours / implicit, both ALS losses after the same
iterations (our objective evaluated on both models' factors), the cost of running ALS inside
a Lightning Trainer, and the peak memory of one ALS iteration (each library in a fresh child
process). Needs the ``bench`` extra (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; set before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import synthetic_matrix  # noqa: E402

from recsys.models.als import ALS  # noqa: E402
from recsys.models.als_solvers import als_loss  # noqa: E402
from recsys.models.bpr import BPR  # noqa: E402


def _implicit():
    try:
        import implicit  # noqa: F401
    except ImportError:
        sys.exit('implicit is not installed: pip install -e ".[bench]"')
    import implicit.cpu.als
    import implicit.cpu.bpr

    return implicit


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def rss_mb() -> float:
    """Peak resident memory of this process so far (VmHWM), MiB. Unlike ru_maxrss it is not
    inherited from the parent through fork and exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- ALS ------------------------------------------------------------------------------------
def als_pair(conf: sp.csr_matrix, factors: int, args, device: str) -> dict:
    """One implicit fit of ``repeats`` iterations; after each, one iteration of ours."""
    implicit = _implicit()
    m, n = conf.shape
    torch.manual_seed(args.seed)
    ours = ALS(
        m,
        n,
        factors=factors,
        regularization=args.regularization,
        alpha0=1.0,
        solver="cg",
        cg_steps=3,
        compute_loss=False,
    ).to(device)
    ours.set_train_confidence(conf)
    theirs = implicit.cpu.als.AlternatingLeastSquares(
        factors=factors,
        regularization=args.regularization,
        alpha=1.0,
        iterations=args.repeats,
        use_cg=True,
        random_state=args.seed,
    )
    theirs.user_factors = ours.user_factors.cpu().numpy().copy()
    theirs.item_factors = ours.item_factors.cpu().numpy().copy()
    ours_s, theirs_s = [], []

    def after_theirs(iteration, elapsed, loss):
        theirs_s.append(elapsed)
        sync(device)
        start = time.perf_counter()
        ours.sweep()
        sync(device)
        ours_s.append(time.perf_counter() - start)

    theirs.fit(conf, show_progress=False, callback=after_theirs)
    loss = lambda x, y: als_loss(  # noqa: E731 - our objective on either model's factors
        ours._by_user, x, y, ours._reg_users, ours._reg_items, 1.0
    )
    return {
        "ours_s": median(ours_s),
        "theirs_s": median(theirs_s),
        "ours_loss": loss(ours.user_factors, ours.item_factors),
        "theirs_loss": loss(
            torch.from_numpy(theirs.user_factors).to(device),
            torch.from_numpy(theirs.item_factors).to(device),
        ),
        "model": ours,
        "theirs": theirs,
    }


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# -- Lightning overhead ---------------------------------------------------------------------
class _EpochClock:
    """Wall time of each training epoch inside the Trainer; ``after()`` runs after each
    (outside the timing), e.g. the peer's epoch, so that the two alternate."""

    def __init__(self, after=None):
        import lightning as L

        clock = self

        class Callback(L.Callback):
            def on_train_epoch_start(self, trainer, module):
                sync(str(module.device))
                clock.start = time.perf_counter()

            def on_train_epoch_end(self, trainer, module):
                sync(str(module.device))
                clock.seconds.append(time.perf_counter() - clock.start)
                if after is not None:
                    after()

        self.seconds: list[float] = []
        self.callback = Callback()


def _datamodule(conf: sp.csr_matrix):
    """The framework's DataModule over one training matrix (no dataset, split or validation),
    so that the Trainer runs exactly the loaders and hooks of a real run."""
    from recsys.data.confidence import Linear
    from recsys.data.datamodule import RecsysDataModule
    from recsys.data.interactions import Interactions
    from recsys.data.training_data import TrainingData

    m, n = conf.shape
    dm = RecsysDataModule(dataset=None, split=None, confidence=None)
    train = Interactions(conf, np.arange(m), np.arange(n))
    dm.split = SimpleNamespace(train=train)  # set: setup() has nothing left to prepare
    # the matrix is already of confidences; the confidence model is only for fold-in
    dm.training_data = TrainingData(train, conf, Linear(alpha=0.0))
    return dm


def in_trainer(model, conf: sp.csr_matrix, epochs: int, device: str, after=None) -> list[float]:
    """Seconds of each of ``epochs`` training epochs of ``model`` run by a Lightning Trainer
    (no logger, checkpoints, progress bar or validation: the framework's own overhead)."""
    import lightning as L

    clock = _EpochClock(after)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[clock.callback],
    )
    trainer.fit(model, datamodule=_datamodule(conf))
    return clock.seconds


def lightning_overhead(model: ALS, conf: sp.csr_matrix, repeats: int, device: str) -> dict:
    """Median ALS epoch inside a Trainer ("ours_s") against direct ``sweep()`` calls
    ("theirs_s"), each run ``repeats`` times back to back, direct calls first."""
    direct = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        model.sweep()
        sync(device)
        direct.append(time.perf_counter() - start)
    return {"ours_s": median(in_trainer(model, conf, repeats, device)), "theirs_s": median(direct)}


# -- BPR ------------------------------------------------------------------------------------
def bpr_pair(x: sp.csr_matrix, optimizer: str, args, device: str) -> dict:
    """Epochs of ours (``optimizer``; in a Trainer) and of implicit's BPR, 64 factors, lr 0.01,
    lambda 0.01 (implicit's defaults); negatives drawn in proportion to popularity (as
    implicit draws them), those the user has rejected."""
    implicit = _implicit()
    m, n = x.shape
    torch.manual_seed(args.seed)
    ours = BPR(
        m,
        n,
        factors=64,
        lr=0.01,
        optimizer=optimizer,
        batch_size=args.bpr_batch,
        regularization=0.01,
        n_negatives=1,
        negatives="popularity",
        reject_seen=True,
        item_bias=True,
    )
    theirs = implicit.cpu.bpr.BayesianPersonalizedRanking(
        factors=64,
        learning_rate=0.01,
        regularization=0.01,
        iterations=1,
        random_state=args.seed,
        verify_negative_samples=True,
    )
    theirs_s: list[float] = []

    def their_epoch():  # fit() goes on from the current factors; its callback times the epoch
        theirs.fit(x, show_progress=False, callback=lambda it, el, *rest: theirs_s.append(el))

    ours_s = in_trainer(ours, x, args.repeats, device, after=their_epoch)
    with torch.no_grad():
        mine = (ours.user_emb.cpu().numpy(), ours.item_emb.cpu().numpy(), ours.item_bias)
        mine = (*mine[:2], mine[2].cpu().numpy())
    # implicit's vectors carry the item bias as the last factor (1 on the user side)
    peer = (theirs.user_factors, theirs.item_factors, np.zeros(n, np.float32))
    return {
        "ours_s": median(ours_s),
        "theirs_s": median(theirs_s),
        "ours_correct": ranked_correctly(x, *mine, args.seed),
        "theirs_correct": ranked_correctly(x, *peer, args.seed),
    }


def ranked_correctly(x: sp.csr_matrix, users, items, bias, seed: int, n: int = 200_000) -> float:
    """Share of ``n`` triples (a training pair drawn uniformly, a negative the user does not
    have, drawn in proportion to popularity; the same triples for every model) with
    x_ui > x_uj: the quantity implicit's BPR reports as "correct"."""
    rng = np.random.default_rng(seed + 1)
    coo = x.tocoo()
    pick = rng.integers(0, x.nnz, n)
    u, i = coo.row[pick], coo.col[pick]
    j = coo.col[rng.integers(0, x.nnz, n)]
    keep = np.asarray(x[u, j]).ravel() == 0
    u, i, j = u[keep], i[keep], j[keep]
    x_ui = (users[u] * items[i]).sum(1) + bias[i]
    x_uj = (users[u] * items[j]).sum(1) + bias[j]
    return float((x_ui > x_uj).mean())


# -- recommend-all --------------------------------------------------------------------------
def recommend_pair(x: sp.csr_matrix, ours: ALS, theirs, args, device: str, batch: int) -> dict:
    """Top-10 for every user, training items filtered; ``batch`` users per call on both
    sides (0: all users in one call), alternating ours and theirs."""
    m, n = x.shape
    ours.set_context(np.arange(m), np.arange(n), x)
    step = batch or m
    ours_s, theirs_s = [], []
    for _ in range(args.repeats):
        sync(device)
        start = time.perf_counter()
        for b in range(0, m, step):
            ours.recommend(torch.arange(b, min(b + step, m)), k=10)
        sync(device)
        ours_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        for b in range(0, m, step):
            users = np.arange(b, min(b + step, m))
            theirs.recommend(users, x[users], N=10, filter_already_liked_items=True)
        theirs_s.append(time.perf_counter() - start)
    return {"ours_s": median(ours_s), "theirs_s": median(theirs_s)}


def loss_cost(model: ALS, repeats: int) -> dict:
    """An ALS sweep with the loss computed after it against one without (``compute_loss``),
    alternating; as ``row`` reads it, "theirs" is the sweep without the loss."""
    with_loss, without = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model.sweep()
        without.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.sweep()
        model.loss()
        with_loss.append(time.perf_counter() - start)
    return {"ours_s": median(with_loss), "theirs_s": median(without)}


# -- memory (child processes) ---------------------------------------------------------------
def memory_child(path: str, which: str, factors: int, device: str) -> None:
    """Load the matrix, then one ALS iteration; print baseline and peak RSS as JSON."""
    tiny = sp.csr_matrix(np.eye(4, dtype=np.float32))
    if which == "ours":  # load the compiled kernel (numba, LLVM) before the baseline
        model = ALS(4, 4, factors=2, compute_loss=False)
        model.set_train_confidence(tiny)
        model.sweep()
    fixed = rss_mb()  # interpreter, numpy, scipy, torch, the library and its kernels
    conf = sp.load_npz(path).tocsr().astype(np.float32)
    if which == "ours":
        model = ALS(
            *conf.shape, factors=factors, regularization=1.0, solver="cg", compute_loss=False
        ).to(device)
        model.set_train_confidence(conf)
        model.sweep()
    else:
        implicit = _implicit()
        implicit.cpu.als.AlternatingLeastSquares(factors=factors, iterations=1).fit(
            conf, show_progress=False
        )
    out = {"fixed_mb": fixed, "peak_mb": rss_mb()}
    if device.startswith("cuda") and which == "ours":
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def memory_pair(conf: sp.csr_matrix, factors: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "conf.npz")
        sp.save_npz(path, conf, compressed=False)
        out = {}
        for which in ("ours", "implicit"):
            cmd = [
                sys.executable,
                __file__,
                "--memory-child",
                path,
                which,
                str(factors),
                "--device",
                device,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out[which] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# -- report ---------------------------------------------------------------------------------
def thread_settings() -> str:
    from threadpoolctl import threadpool_info

    blas = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    return (
        f"torch threads {torch.get_num_threads()}; implicit num_threads 0 (all "
        f"{os.cpu_count()} cores); OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
        f"; thread pools: {blas}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--nnz", type=int, default=5_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    p.add_argument("--confidence", type=float, default=10.0, help="c_ui of observed pairs")
    p.add_argument("--regularization", type=float, default=1.0)
    p.add_argument("--bpr-batch", type=int, default=65536)
    p.add_argument("--bpr-lr", type=float, default=0.01)
    p.add_argument("--recommend-batch", type=int, default=4096)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--parts", nargs="+", default=["als", "loss", "trainer", "bpr", "recommend", "memory"]
    )
    p.add_argument("--memory-child", nargs=3, metavar=("NPZ", "WHICH", "FACTORS"))
    args = p.parse_args()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.memory_child:
        path, which, factors = args.memory_child
        memory_child(path, which, int(factors), args.device)
        return

    start = time.perf_counter()
    x = synthetic_matrix(args.users, args.items, args.nnz, seed=args.seed)
    conf = x * args.confidence
    print(
        f"# {args.users:,} users x {args.items:,} items, {x.nnz:,} nonzeros (generated in "
        f"{time.perf_counter() - start:.1f} s); observed confidence {args.confidence:g}, "
        f"lambda {args.regularization:g}; {args.repeats} repeats, medians"
    )
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, device "
        f"{args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device != "cpu" else "")
    )
    print(f"# {thread_settings()}")
    print(
        f"# torch {torch.__version__}, implicit {_implicit().__version__} (always on the CPU:"
        " its PyPI wheel has no CUDA)\n"
    )
    print("| task | ours (s) | implicit (s) | ours / implicit | notes |")
    print("|---|---|---|---|---|")

    def row(task, r, note=""):
        ratio = r["ours_s"] / r["theirs_s"]
        print(
            f"| {task} | {r['ours_s']:.3f} | {r['theirs_s']:.3f} | {ratio:.2f} | {note} |",
            flush=True,
        )

    als64 = None
    for f in args.factors if "als" in args.parts or "recommend" in args.parts else []:
        r = als_pair(conf, f, args, args.device)
        row(
            f"ALS iteration, {f} factors",
            r,
            f"loss after {args.repeats} iterations: ours {r['ours_loss']:.6g}, "
            f"implicit {r['theirs_loss']:.6g}",
        )
        if als64 is None:
            als64 = r
        if "loss" in args.parts and args.device == "cpu":
            row(f"ALS epoch with the loss / without, {f} factors", loss_cost(r["model"],
                args.repeats), "`compute_loss`: the objective after each sweep; the "
                "implicit column is our sweep without it")  # fmt: skip
        if "trainer" in args.parts and f == args.factors[0]:
            r = lightning_overhead(r["model"], conf, args.repeats, args.device)
            print(
                f"| ALS epoch in a Trainer / direct `sweep()`, {f} factors | {r['ours_s']:.3f} "
                f"| {r['theirs_s']:.3f} (ours, direct) | {r['ours_s'] / r['theirs_s']:.2f} | "
                "Lightning's overhead; each side run back to back |",
                flush=True,
            )
    if "bpr" in args.parts:
        if args.device == "cpu":
            r = bpr_pair(x, "hogwild", args, args.device)
            row(
                "BPR epoch, 64 factors",
                r,
                "both per-triple SGD on all threads; ours in a "
                f"Trainer (`model.optimizer=hogwild`); triples ranked correctly after "
                f"{args.repeats} epochs: ours {r['ours_correct']:.3f}, implicit "
                f"{r['theirs_correct']:.3f}",
            )
        r = bpr_pair(x, "adam", args, args.device)
        row(
            "BPR epoch, 64 factors, ours with Adam",
            r,
            f"ours: batches of {args.bpr_batch:,} triples, Adam, in a Trainer; ranked correctly:"
            f" ours {r['ours_correct']:.3f}, implicit {r['theirs_correct']:.3f}",
        )
    if "recommend" in args.parts and als64 is not None:
        for batch in (0, args.recommend_batch):
            r = recommend_pair(x, als64["model"], als64["theirs"], args, args.device, batch)
            how = "in one call" if batch == 0 else f"in batches of {batch:,} users"
            row(f"top-10 for all {args.users:,} users, seen filtered, {how}", r,
                f"{args.factors[0]} factors")  # fmt: skip
    if "memory" in args.parts:
        f = max(args.factors)
        mem = memory_pair(conf, f, args.device)
        csr_mb = (x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 2**20
        factors_mb = (args.users + args.items) * f * 4 / 2**20
        print(
            f"\nPeak memory of one ALS iteration at {f} factors (fresh process each; MiB; "
            f"'fixed' = after imports; CSR {csr_mb:.0f} + factors {factors_mb:.0f} = "
            f"{csr_mb + factors_mb:.0f}):\n"
        )
        print("| library | fixed | peak | peak - fixed | (peak - fixed) / (CSR + factors) |")
        print("|---|---|---|---|---|")
        for which, v in mem.items():
            extra = v["peak_mb"] - v["fixed_mb"]
            print(
                f"| {which} | {v['fixed_mb']:.0f} | {v['peak_mb']:.0f} | {extra:.0f} | "
                f"{extra / (csr_mb + factors_mb):.2f} |"
            )
            if "gpu_peak_mb" in v:
                print(f"\nours, GPU memory: peak allocated {v['gpu_peak_mb']:.0f} MiB")
    print(f"\n# total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
