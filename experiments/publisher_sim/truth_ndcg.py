"""``python experiments/publisher_sim/truth_ndcg.py RUN_DIR...``: NDCG@20 of each run's model
against the simulator's true affinities (``recsys.evaluation.truth``), averaged over every
reader the model was trained on, training articles excluded; prints ``run  value``."""

from __future__ import annotations

import sys
from pathlib import Path

from recsys.config import compose_run_config
from recsys.models.checkpoint import load_model
from recsys.runs.evaluate import checkpoint_datamodule
from recsys.runs.truth import mean_truth_ndcg


def run_truth_ndcg(run_dir: Path, k: int = 20, batch: int = 1024) -> float:
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    model = load_model(ckpt)
    cfg = compose_run_config("eval", [f"ckpt_path={ckpt}"], run_dir / "truth")
    dm, _ = checkpoint_datamodule(cfg, model)
    return mean_truth_ndcg(model, dm, k, batch)


if __name__ == "__main__":
    for run in sys.argv[1:]:
        print(f"{run}\t{run_truth_ndcg(Path(run)):.4f}")
