"""The worked example of ``experiments/publisher_log/``: its documented commands (``run.sh``)
on a small simulated export in a temporary folder, from config files and the raw export only:
no Python of the user's, no PYTHONPATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "experiments" / "publisher_log"


def test_the_example_is_config_files_only():
    files = [p for p in (EXAMPLE / "configs").rglob("*") if p.is_file()]
    assert files and all(p.suffix == ".yaml" for p in files)
    assert "PYTHONPATH" not in (EXAMPLE / "run.sh").read_text()


@pytest.mark.slow
def test_the_worked_example_runs_from_config_and_the_raw_export(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(READERS="1500", ARTICLES="300", DAYS="10", SEED="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")  # fmt: skip
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(EXAMPLE / "run.sh"), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    compare = (out / "compare.md").read_text()
    for baseline in ("| popularity |", "| most_recent |", "| hybrid |", "| content |"):
        assert baseline in compare
    engagement = pd.read_csv(out / "engagement" / "engagement.csv")
    assert {"topic", "length"} <= set(engagement["by"]) and (
        out / "engagement" / "engagement.svg"
    ).is_file()
    replay = json.loads((out / "replay" / "hybrid" / "replay.json").read_text())
    assert replay["rho_from"].startswith("the log's share")  # the export's source column
    assert replay["sessions_of_new_readers"] > 0 and "0 (new)" in replay["by_reader_history"]

    articles = pd.read_csv(out / "export" / "articles.csv", index_col="article")
    epoch = pd.Timestamp(0, tz="UTC")
    published = (pd.to_datetime(articles["published"]) - epoch).dt.total_seconds()
    now = pd.Timestamp(pd.read_csv(out / "export" / "views.csv")["time"].iloc[-1]).timestamp()
    for name in ("known_reader", "new_reader_on_article"):
        lists = [json.loads(line) for line in (out / "lists" / f"{name}.jsonl").open()]
        assert len(lists) == 1 and len(lists[0]["items"]) == 5
        ages = now - published[lists[0]["items"]].to_numpy()
        assert ((ages >= 0) & (ages <= 2 * 86_400)).all()  # fresh_days=2 before now
    everyone = pd.read_parquet(out / "lists" / "all_readers.parquet")
    readers = pd.read_csv(out / "export" / "views.csv")["reader"]
    assert everyone["user"].nunique() > 0.5 * readers.nunique()  # the training readers
    related = pd.read_parquet(out / "lists" / "related.parquet")
    assert list(related.columns) == ["item", "rank", "related", "score"]
    assert (
        related["item"].nunique() == len(articles) and (related["item"] != related["related"]).all()
    )
