"""Pick the tuning run with the best validation value of its optimized_metric.

Usage: python choose_best.py SWEEP_DIR  ->  prints "<overrides> trainer.max_epochs=<best epoch>"
(the overrides of the winning run, from its .hydra/overrides.yaml, minus the tuning-only ones),
and writes SWEEP_DIR/selection.csv with every run's best validation value and epoch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TUNING_ONLY = ("split.val_ratio", "hydra.", "trainer.max_epochs", "seed=")


def best_of(run: Path) -> tuple[float, int, str]:
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    metric = config["optimized_metric"]
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars(metric)
    values = [e.value for e in events]
    best = max(range(len(values)), key=values.__getitem__)  # first best epoch
    return values[best], best + 1, metric


def main(sweep: Path) -> None:
    rows = []
    for run in sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir()):
        value, epochs, metric = best_of(run)
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        kept = [o for o in overrides if not o.startswith(TUNING_ONLY)]
        rows.append((value, epochs, metric, " ".join(kept)))
    with open(sweep / "selection.csv", "w") as f:
        f.write("value,epochs,metric,overrides\n")
        for r in rows:
            f.write(f"{r[0]:.6f},{r[1]},{r[2]},{r[3]}\n")
    value, epochs, _, kept = max(rows, key=lambda r: r[0])
    print(f"{kept} trainer.max_epochs={epochs}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
