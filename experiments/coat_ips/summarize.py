"""Per-seed summary of the coat_ips study: mean and standard deviation over the seeds of each
side's test metrics. Usage: python summarize.py OUT_DIR (as given to run.sh)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

KEYS = ("ndcg@5", "recall@5", "arp@5", "recall_tail@5")


def main(out: Path) -> None:
    print("| run | seeds | " + " | ".join(f"{k} (mean +- sd over seeds)" for k in KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for model in ("als", "wmf", "bpr"):
        for exp in (f"coat_{model}", f"coat_ips_{model}"):
            runs = sorted((out / "final" / exp).glob("*/metrics.json"))
            if not runs:
                continue
            values = [json.loads(p.read_text()) for p in runs]
            cells = []
            for k in KEYS:
                v = np.array([m[f"test/{k}"] for m in values])
                cells.append(f"{v.mean():.4f} +- {v.std(ddof=1):.4f}")
            print(f"| {exp} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
