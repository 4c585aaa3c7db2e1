"""``python experiments/publisher_log/dwell/diagnostics.py [SEEDS...]``: how well each dwell
weighting g reads the simulator's true affinity, before any model: Spearman correlations, over
every (reader, article) pair of the whole log of ``data=publisher_sim`` (default config; the
weightings fitted on the whole log, as this is a description of the data, not a model), of g
with the pair's true affinity (all pairs; reads only, dwell >= 10 s) and with the article's
length (reads), and of each article's mean g with its mean true affinity over its readers.
Mean over the seeds (default 0..4)."""

from __future__ import annotations

import sys

import numpy as np
from scipy.stats import spearmanr

from recsys.data.confidence import Dwell, DwellPerLength, DwellQuantile
from recsys.data.datasets import PublisherSimulator

WEIGHTINGS = {"dwell": Dwell, "dwell_per_length": DwellPerLength, "dwell_quantile": DwellQuantile}
COLUMNS = ("g~affinity, all pairs", "g~affinity, reads", "g~length, reads",
           "article mean g~article mean affinity")  # fmt: skip


def diagnostics(seed: int) -> dict[str, list[float]]:
    sim = PublisherSimulator(rules={"bounce_seconds": 10, "strength": "count"}, seed=seed)
    data = sim.load()
    items = data.matrix.indices
    aff = sim.truth.affinity_pairs(data.user_ids[data.rows()], data.item_ids[items])
    reads = data.features["dwell"] >= 10
    length = data.features["item_length"]
    n = np.bincount(items, minlength=data.n_items)
    seen = n > 0
    mean_aff = np.bincount(items, aff, minlength=data.n_items)[seen] / n[seen]
    out = {}
    for name, cls in WEIGHTINGS.items():
        g = cls().fit(data).g(data)
        mean_g = np.bincount(items, g, minlength=data.n_items)[seen] / n[seen]
        out[name] = [
            spearmanr(g, aff)[0],
            spearmanr(g[reads], aff[reads])[0],
            spearmanr(g[reads], length[reads])[0],
            spearmanr(mean_g, mean_aff)[0],
        ]
    return out


if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[1:]] or [0, 1, 2, 3, 4]
    runs = [diagnostics(s) for s in seeds]
    print(f"Spearman correlations, mean over seeds {seeds} (min, max):\n")
    print("| weighting | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name in WEIGHTINGS:
        values = np.array([r[name] for r in runs])
        cells = [f"{v.mean():+.3f} ({v.min():+.3f}, {v.max():+.3f})" for v in values.T]
        print(f"| `{name}` | " + " | ".join(cells) + " |")
