"""How far coat's self-selected training positives differ in popularity from the random test's.

Usage: RECSYS_DATA_DIR=../shared/data python experiments/coat_ips/diagnose.py
Prints, for training positives, random-test positives and all random-test items: the mean
training popularity n_i of the item (users with a training positive on it), and the share of
each popularity bucket (head / mid / tail: items holding the first 20%, next 60%, last 20% of
training positives).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recsys.data.datasets import Coat
from recsys.data.propensity import item_counts
from recsys.evaluation.bias_metrics import popularity_bucket

coat = Coat(
    Path(os.environ.get("RECSYS_DATA_DIR", "../shared/data")) / "coat", test_candidates="rated"
)
parts = coat.load_parts()
pop = item_counts(parts["train"])
bucket = popularity_bucket(pop, (0.2, 0.8))
counts = [int(np.sum(bucket == b)) for b in range(3)]
print(f"items: {len(pop)}; head {counts[0]}, mid {counts[1]}, tail {counts[2]}")
print("| pairs | count | mean n_i of their items | head | mid | tail |")
print("|---|---|---|---|---|---|")
for name, part in (
    ("training positives (rating >= 4)", parts["train"]),
    ("random-test positives (rating >= 4)", parts["test"]),
    ("all random-test items (16 per user)", parts["test_candidates"]),
):
    items = part.matrix.tocoo().col
    shares = [np.mean(bucket[items] == b) for b in range(3)]
    print(
        f"| {name} | {len(items)} | {pop[items].mean():.2f} | "
        + " | ".join(f"{s:.1%}" for s in shares)
        + " |"
    )
