"""The table of a multirun (``recsys-train -m ...``): one row per job, its overrides, the best
epoch's validation metrics and the test metrics, written as ``summary.csv`` in the multirun's
folder when the multirun ends (a Hydra callback, ``configs/hydra/default.yaml``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import yaml
from hydra.experimental.callback import Callback

from recsys.files import write_atomically

log = logging.getLogger(__name__)


def multirun_table(sweep_dir: Path) -> pd.DataFrame:
    """One row per job folder of ``sweep_dir`` (by job number): ``job``, ``overrides`` (as
    given, space-separated), ``status`` (``done``, or ``failed`` for a job that wrote no
    ``metrics.json``), then ``best_epoch``, the ``val/...`` and the ``test/...`` metrics."""
    rows = []
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    for job in sorted(jobs, key=lambda p: int(p.name)):
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
        row = {"job": int(job.name), "overrides": " ".join(overrides or [])}
        metrics_file = job / "metrics.json"
        if metrics_file.is_file():
            row.update(status="done", **json.loads(metrics_file.read_text()))
        else:
            row["status"] = "failed"
        rows.append(row)
    frame = pd.DataFrame(rows)
    first = [c for c in ("job", "overrides", "status", "best_epoch") if c in frame.columns]
    val = sorted(c for c in frame.columns if c.startswith("val/"))
    test = sorted(c for c in frame.columns if c.startswith("test/"))
    rest = [c for c in frame.columns if c not in {*first, *val, *test}]
    return frame[first + val + test + rest]


class MultirunSummary(Callback):
    """Writes ``summary.csv`` (``multirun_table``) when a multirun ends, and logs its path."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        table = multirun_table(sweep_dir)
        if table.empty:
            return
        path = sweep_dir / "summary.csv"
        write_atomically(path, lambda tmp: table.to_csv(tmp, index=False))
        log.info("%d runs: %s", len(table), path)
