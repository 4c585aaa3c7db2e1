"""The validation table of ``run.sh``'s PHASE=val runs: per run, the best validation
NDCG@10 (the checkpoint callback's best score) and its epoch, read from ``last.ckpt``.

    python experiments/sequential/val_table.py logs/sequential/val/ml_latest_small
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch


def best(run: Path) -> tuple[float, int] | None:
    """``(best val/ndcg@10, its epoch)`` of a run directory, or None without a checkpoint."""
    path = run / "checkpoints" / "last.ckpt"
    if not path.is_file():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    for key, state in ckpt.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            epoch = re.search(r"epoch_(\d+)", state["best_model_path"])
            return float(state["best_model_score"]), int(epoch.group(1)) if epoch else -1
    return None


def main(folder: str) -> None:
    print("| run | val NDCG@10 | best epoch (0-based) |\n|---|---|---|")
    for run in sorted(Path(folder).iterdir()):
        found = best(run)
        if found:
            print(f"| {run.name} | {found[0]:.4f} | {found[1]} |")


if __name__ == "__main__":
    main(sys.argv[1])
