"""``python experiments/publisher_sim/confidence_table.py DIR``: the confidence table (mean
and standard deviation over seeds of NDCG@20 against the true affinities, from
DIR/truth.tsv, and of test NDCG@20 / recall@20 on the held-out log, from each run's
metrics.json), with the mean paired difference from binary and its paired t-test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from recsys.evaluation.significance import paired_t_test

CONFIDENCES = ("binary", "linear", "dwell")


def confidence_table(root: Path) -> str:
    truth = dict(line.split("\t") for line in (root / "truth.tsv").read_text().splitlines())
    truth = {str(Path(k)): float(v) for k, v in truth.items()}
    cols = {"truth NDCG@20": {}, "log NDCG@20": {}, "log recall@20": {}}
    for c in CONFIDENCES:
        runs = sorted((root / c).iterdir(), key=lambda p: int(p.name))
        cols["truth NDCG@20"][c] = np.array([truth[str(r)] for r in runs])
        metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
        cols["log NDCG@20"][c] = np.array([m["test/ndcg@20"] for m in metrics])
        cols["log recall@20"][c] = np.array([m["test/recall@20"] for m in metrics])
    lines = [
        "| confidence | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for c in CONFIDENCES:
        cells = []
        for values in cols.values():
            v, b = values[c], values["binary"]
            cell = f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"
            if c != "binary":
                cell += f" ({(v - b).mean():+.4f}, p {paired_t_test(v, b):.3g})"
            cells.append(cell)
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: confidence_table.py DIR")
    print(confidence_table(Path(sys.argv[1])))
