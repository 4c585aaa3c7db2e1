"""Training a block on a site's logs so far (``recsys-train``'s run, in-process), as a
deployed system retrains: the logs are written in the export format, read by ``data=events``
with the export's columns and CMS table, and the model is fitted on all but the latest 5%
of the views (its test part, which the run reports)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from recsys.config import compose_run_config, nested_run

EXPORT_COLUMNS = {"user": "reader", "item": "article", "timestamp": "time",
                  "session": "session", "dwell": "dwell_seconds", "source": "source"}  # fmt: skip
TABLE_COLUMNS = {"item": "article", "title": "title", "text": "body", "topic": "section",
                 "published": "published", "length": "words"}  # fmt: skip


def export_overrides(views: str | Path, articles: str | Path) -> list[str]:
    """``data=events`` on an export's ``views.csv`` and ``articles.csv`` (the columns of
    ``PublisherSimulator.write_export`` and of the closed loop's logs)."""
    out = ["data=events", f"data.path={views}", f"data.items.path={articles}"]
    out += [f"data.columns.{role}={name}" for role, name in EXPORT_COLUMNS.items()]
    out += [f"data.items.columns.{role}={name}" for role, name in TABLE_COLUMNS.items()]
    return out


class TrainOnLogs:
    """A callable ``(export, day) -> checkpoint path``: ``recsys-train`` with ``overrides``
    (the model and its settings, e.g. ``["model=hybrid", "model.n_min=4"]``) on the export,
    into ``workdir/<name>/day_<day>``; temporal split, the latest ``test_ratio`` of views
    held out (the run's report), no validation; dwell confidence unless overridden."""

    def __init__(
        self, workdir: str | Path, name: str, overrides: Sequence[str], test_ratio: float = 0.05
    ) -> None:
        self.workdir, self.name = Path(workdir), name
        self.overrides = list(overrides)
        self.test_ratio = float(test_ratio)

    def __call__(self, export: dict, day: int) -> str:
        from recsys.runs.fit import train

        out = self.workdir / self.name / f"day_{day:03d}"
        overrides = [
            *export_overrides(export["views"], export["articles"]),
            "split=temporal", f"split.test_ratio={self.test_ratio}", "split.val_ratio=0",
            "confidence=dwell", "logger=[]", "data_cache=false",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            *self.overrides,
        ]  # fmt: skip
        with nested_run():  # inside recsys-simulate, a Hydra app of its own
            train(compose_run_config("train", overrides, out, root_dir=out))
        return str(out / "checkpoints" / "last.ckpt")
