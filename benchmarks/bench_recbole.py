"""Ours against RecBole, side by side on gowalla's training part, in one process:
``RECSYS_DATA_DIR=../shared/data python benchmarks/bench_recbole.py [--repeats 3]``.

- LightGCN (64 dims, 3 layers, BPR loss, one negative per pair, batches of 8,192 pairs, Adam
  0.005, lambda 1e-4): one training epoch over the same 810,128 training pairs on each side
  (ours: ``experiment=gowalla_lightgcn`` in a Lightning Trainer; RecBole: its ``Trainer``'s
  ``_train_epoch`` on the same pairs, given as its benchmark files).
- Mult-VAE ([I -> 600 -> 200 -> 600 -> I], dropout 0.5, batches of 500 user rows, Adam
  1e-3, no L2; RecBole's ``latent_dimension`` 400 is its mu and logvar together): the time
  per user row. Ours: one epoch (every training user once). RecBole's epoch runs over
  interactions (a user's row once for every one of its pairs, ~27 times as many rows), so it
  is timed over as many batches of 500 rows as ours has, with its own loss, backward and step.

Alternates the two, ``--repeats`` times, and prints medians and the ratio ours / RecBole.
Needs the ``bench`` extra (``pip install -e ".[bench]"``: RecBole).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from recsys.config import compose_run_config
from recsys.data.datamodule import RecsysDataModule


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def ours_epoch(cfg, dm, model) -> float:
    """One training epoch of ``model`` in a Lightning Trainer (no validation)."""
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu",
                        callbacks=[timer])  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return timer.seconds[0]


def write_recbole_files(dm, folder: Path) -> None:
    """The training pairs as RecBole's benchmark files (``gowalla.train.inter``; the test
    pairs as its valid and test files, which are not used)."""
    folder.mkdir(parents=True)
    for part, m in (("train", dm.split.train.matrix), ("valid", dm.split.test.matrix),
                    ("test", dm.split.test.matrix)):  # fmt: skip
        coo = m.tocoo()
        with open(folder / f"gowalla.{part}.inter", "w") as f:
            f.write("user_id:token\titem_id:token\n")
            np.savetxt(f, np.c_[coo.row, coo.col], fmt="%d", delimiter="\t")


def recbole_compat() -> None:
    """RecBole 1.2.1 against today's NumPy and SciPy, for this process only: it assigns
    ``np.float = np.float_`` (and the like) on start-up, names that NumPy 2 removed, so they
    are given back pointing at today's types; its LightGCN fills its adjacency matrix by
    ``dok_matrix._update``, which SciPy removed, so that name calls the public ``update``."""
    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if old not in np.__dict__:
            setattr(np, old, new)
    import scipy.sparse as sp

    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = lambda self, values: self.update(values)


def recbole_setup(model_name: str, data_path: Path, extra: dict):
    recbole_compat()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    config = Config(model=model_name, dataset="gowalla", config_dict={
        "data_path": str(data_path), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]}, "device": "cpu", "use_gpu": False,
        "show_progress": False, "state": "ERROR", "reproducibility": True, "seed": 0,
        "checkpoint_dir": str(data_path / "saved"), **extra,
    })  # fmt: skip
    os.chdir(data_path)  # RecBole's Trainer writes ./log_tensorboard: in the temporary folder
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().setLevel(logging.ERROR)
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train._dataset).to("cpu")
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return train, model, trainer


def recbole_batches(train, model, trainer, n_batches: int | None) -> float:
    """``n_batches`` of RecBole's training loop (its loss, backward, optimizer step), or its
    whole epoch (``Trainer._train_epoch``) for None."""
    start = time.perf_counter()
    if n_batches is None:
        trainer._train_epoch(train, epoch_idx=0, show_progress=False)
    else:
        model.train()
        for i, interaction in enumerate(train):
            if i == n_batches:
                break
            trainer.optimizer.zero_grad()
            loss = model.calculate_loss(interaction.to("cpu"))
            loss.backward()
            trainer.optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["lightgcn", "multvae"])
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import recbole

    out = Path(tempfile.mkdtemp())
    cfg = compose_run_config("train", ["experiment=gowalla_lightgcn", "logger=[]"], out / "ours",
                             root_dir=out / "ours")  # fmt: skip
    dm = RecsysDataModule.from_config(cfg)
    write_recbole_files(dm, out / "recbole" / "gowalla")
    users = int((np.diff(dm.split.train.matrix.indptr) > 0).sum())
    print(f"# gowalla training part: {dm.n_users:,} users x {dm.n_items:,} items, "
          f"{dm.split.train.nnz:,} pairs ({users:,} users with pairs); torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; RecBole "
          f"{recbole.__version__}; {os.cpu_count()} CPUs; {a.repeats} repeats, "
          "medians\n")  # fmt: skip
    print("| task | ours (s) | RecBole (s) | ours / RecBole | notes |")
    print("|---|---|---|---|---|")
    import hydra

    if "lightgcn" in a.models:
        rb = recbole_setup("LightGCN", out / "recbole", {
            "embedding_size": 64, "n_layers": 3, "reg_weight": 1e-4, "learning_rate": 0.005,
            "train_batch_size": 8192, "train_neg_sample_args": {"distribution": "uniform",
                                                                 "sample_num": 1},
        })  # fmt: skip
        ours, theirs = [], []
        for _ in range(a.repeats):
            model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
            ours.append(ours_epoch(cfg, dm, model))
            theirs.append(recbole_batches(*rb, None))
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"| LightGCN epoch (810k pairs, batches of 8,192) | {o:.1f} | {t:.1f} | "
              f"{o / t:.2f} | ours {min(ours):.1f}-{max(ours):.1f}, RecBole "
              f"{min(theirs):.1f}-{max(theirs):.1f} |", flush=True)  # fmt: skip
    if "multvae" in a.models:
        vae_cfg = compose_run_config(
            "train",
            ["data=gowalla", "split=predefined", "model=multvae", "logger=[]"],
            out / "vae",
            root_dir=out / "vae",
        )
        rb = recbole_setup("MultiVAE", out / "recbole", {
            # RecBole's encoder ends in latent_dimension units, split into mu and logvar: 400
            # gives ours, [I -> 600 -> 2 x 200] and a decoder [200 -> 600 -> I]
            "mlp_hidden_size": [600], "latent_dimension": 400, "dropout_prob": 0.5,
            "anneal_cap": 0.2, "total_anneal_steps": 200000, "learning_rate": 1e-3,
            "train_batch_size": 500, "train_neg_sample_args": None,
        })  # fmt: skip
        n_batches = -(-users // 500)
        ours, theirs = [], []
        for _ in range(a.repeats):
            model = hydra.utils.instantiate(vae_cfg.model, n_users=dm.n_users,
                                            n_items=dm.n_items)  # fmt: skip
            ours.append(ours_epoch(vae_cfg, dm, model))
            theirs.append(recbole_batches(*rb, n_batches))
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"| Mult-VAE, {n_batches} batches of 500 user rows (our epoch) | {o:.1f} | "
              f"{t:.1f} | {o / t:.2f} | ours {min(ours):.1f}-{max(ours):.1f}, RecBole "
              f"{min(theirs):.1f}-{max(theirs):.1f}; RecBole's own epoch is ~27x as many "
              "rows |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
