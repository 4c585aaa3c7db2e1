"""Engagement analytics (``recsys.evaluation.engagement``, ``recsys-engagement``): the table
against a brute-force loop over a small hand-made log with an item table, the figure as XML,
and the console script from the worked example's config on a small simulated export."""

from __future__ import annotations

import math
import statistics
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import one_line, run_main

from recsys.data.datasets import EventLog, PublisherSimulator
from recsys.data.datasets.publisher_sim import SECTIONS
from recsys.evaluation.engagement import (
    UNKNOWN,
    engagement_table,
    item_frame,
    length_edges_of,
    to_markdown,
    to_svg,
    views_of,
)
from recsys.evaluation.significance import bootstrap_ratio_ci

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIGS = ROOT / "experiments" / "publisher_log" / "configs"
GAP, BOUNCE, RESAMPLES = 1800, 10.0, 200
BUCKETS = ["short (< 300 words)", "medium (300 to < 600 words)", "long (>= 600 words)"]
SVG = "{http://www.w3.org/2000/svg}"


def _log(folder: Path) -> tuple[Path, Path, list[dict]]:
    """A log of 6 readers and 9 articles (views and shares, no dwell column: dwell is the time
    to the next event of the session, unknown at a session's end; sessions by a 30-minute gap;
    a scroll column with gaps), and an item table without article 9, with an empty topic for
    article 8 and no length for article 7."""
    rng = np.random.default_rng(3)
    rows, t = [], 1_700_000_000
    for user in range(1, 7):
        t += 10_000
        for _ in range(int(rng.integers(4, 12))):
            t += int(rng.choice([3, 8, 40, 200, 900, 5000]))  # gaps: bounces, reads, new sessions
            rows.append({
                "user": f"u{user}", "item": int(rng.integers(1, 10)), "time": t,
                "type": "share" if rng.random() < 0.15 else "view",
                "scroll": round(float(rng.random()), 2) if rng.random() < 0.7 else None,
            })  # fmt: skip
    order = rng.permutation(len(rows))  # the file need not be sorted
    log = folder / "log.csv"
    pd.DataFrame([rows[i] for i in order]).to_csv(log, index=False)
    items = pd.DataFrame({
        "id": range(1, 9),
        "topic": ["news", "news", "sport", "sport", "sport", "arts", "arts", ""],
        "words": [120, 250, 300, 450, 599, 600, None, 1000],
        "desk": ["a", "b", "a", "b", "a", "b", "a", "b"],
    })  # fmt: skip
    table = folder / "items.csv"
    items.to_csv(table, index=False)
    return log, table, [{**r, "row": i} for i, r in enumerate(rows)]


def _brute_force(rows: list[dict], items: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """The definitions of ``recsys.evaluation.engagement``, one event at a time."""
    rows = sorted(rows, key=lambda r: (r["user"], r["time"]))
    session, dwell, n = [], [], 0
    for k, r in enumerate(rows):
        first = k == 0 or rows[k - 1]["user"] != r["user"] or r["time"] - rows[k - 1]["time"] > GAP
        n += first
        session.append(n)
    for k, r in enumerate(rows):
        last = k + 1 == len(rows) or session[k + 1] != session[k]
        dwell.append(None if last else rows[k + 1]["time"] - r["time"])
    views = []
    for k, r in enumerate(rows):
        if r["type"] != "view":
            continue
        later = [j for j in range(k + 1, len(rows)) if session[j] == session[k]]
        views.append({**r, "session": session[k], "dwell": dwell[k],
                      "continued": any(rows[j]["type"] == "view" for j in later)})  # fmt: skip

    def groups(item: int) -> dict[str, str]:
        if item not in items.index:
            return {"topic": UNKNOWN, "length": UNKNOWN, "desk": UNKNOWN}
        topic, words, desk = items.loc[item, ["topic", "words", "desk"]]
        bucket = UNKNOWN if math.isnan(words) else BUCKETS[int(words >= 300) + int(words >= 600)]
        return {"topic": topic or UNKNOWN, "length": bucket, "desk": desk}

    members = defaultdict(list)
    for v in views:
        members[("all", "all")].append(v)
        for dim, group in groups(v["item"]).items():
            members[(dim, group)].append(v)
    out = {}
    for key, vs in members.items():
        readers = sorted({v["user"] for v in vs})  # the table's reader order: sorted ids
        known = [v for v in vs if v["dwell"] is not None]
        reads = [v for v in known if v["dwell"] >= BOUNCE]
        per_word = [
            100 * v["dwell"] / items.loc[v["item"], "words"]
            for v in known
            if v["item"] in items.index and items.loc[v["item"], "words"] > 0
        ]
        pairs = defaultdict(set)
        for v in vs:
            pairs[(v["user"], v["item"])].add(v["session"])
        scrolls = [
            v["scroll"] for v in vs if v["scroll"] is not None and not math.isnan(v["scroll"])
        ]
        per_reader = {
            "read_rate": ([sum(v["user"] == u for v in reads) for u in readers],
                          [sum(v["user"] == u for v in known) for u in readers]),
            "repeat_visits": ([sum(len(s) > 1 for p, s in pairs.items() if p[0] == u)
                               for u in readers],
                              [sum(p[0] == u for p in pairs) for u in readers]),
            "continued": ([sum(v["continued"] for v in vs if v["user"] == u) for u in readers],
                          [sum(v["user"] == u for v in vs) for u in readers]),
        }  # fmt: skip
        row = {
            "articles": len({v["item"] for v in vs}),
            "views": len(vs),
            "readers": len(readers),
            "reads": len(reads),
            "unknown_dwell": len(vs) - len(known),
            "median_dwell": statistics.median(v["dwell"] for v in known),
            "median_dwell_per_100_words": statistics.median(per_word) if per_word else math.nan,
            "scroll": sum(scrolls) / len(scrolls) if scrolls else math.nan,
        }
        for name, (num, den) in per_reader.items():
            row[name] = sum(num) / sum(den)
            lo, hi = bootstrap_ratio_ci(np.array(num), np.array(den), resamples=RESAMPLES)
            row[f"{name}_low"], row[f"{name}_high"] = lo, hi
        out[key] = row
    return out


def _table(tmp_path: Path) -> tuple[pd.DataFrame, dict]:
    log, table, rows = _log(tmp_path)
    data = EventLog(
        str(log),
        {"user": "user", "item": "item", "timestamp": "time", "event_type": "type",
         "scroll": "scroll"},
        items={"path": str(table), "columns": {"item": "id", "topic": "topic", "length": "words"}},
    )  # fmt: skip
    views, sessions_known = views_of(data.events(), GAP, ["view"])
    assert sessions_known
    items = item_frame(data)
    result = engagement_table(
        views, items, ["topic", "length", "desk"], BOUNCE, sessions_known,
        ["short", "medium", "long"], [300, 600], "words", RESAMPLES, seed=0,
    )  # fmt: skip
    expected = _brute_force(rows, pd.read_csv(table, index_col="id", keep_default_na=False,
                                              na_values={"words": [""]}))  # fmt: skip
    return result, expected


def test_the_table_equals_a_brute_force_loop_over_the_events(tmp_path):
    result, expected = _table(tmp_path)
    assert [(r.by, r.group) for r in result.itertuples()][:1] == [("all", "all")]
    assert set(zip(result["by"], result["group"])) == set(expected)
    assert result.loc[result["by"] == "length", "group"].tolist() == [*BUCKETS, UNKNOWN]
    assert (result["unknown_dwell"] > 0).any() and (result["repeat_visits"] > 0).any()
    assert result["median_dwell_per_100_words"].isna().any()  # article 7 alone has no length
    for r in result.to_dict("records"):
        want = expected[(r["by"], r["group"])]
        for name, value in want.items():
            assert r[name] == pytest.approx(value, nan_ok=True), (r["by"], r["group"], name)
        for name in ("read_rate", "repeat_visits", "continued"):
            assert r[f"{name}_low"] <= r[name] <= r[f"{name}_high"]


def test_length_buckets_are_the_tables_terciles():
    lengths = np.array([100, 200, 300, 400, 500, 600, np.nan])
    assert length_edges_of(lengths, ["short", "medium", "long"]).tolist() == [300, 500]
    with pytest.raises(Exception, match="increasing"):
        length_edges_of(lengths, ["short", "medium", "long"], [500, 300])


def test_the_figure_is_xml_with_one_bar_per_group(tmp_path):
    result, _ = _table(tmp_path)
    svg = to_svg(result, "Engagement & <reading>", BOUNCE)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    bars = root.findall(f".//{SVG}rect[@class='read-rate']")
    assert [b.get("data-group") for b in bars] == ["all views", *result["group"][1:]]
    assert len(root.findall(f".//{SVG}rect[@class='dwell']")) == len(result)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Engagement & <reading>" in texts and root.find(f"{SVG}title") is not None
    assert "read rate (share of views)" in texts and "median dwell (s)" in texts
    widths = [float(b.get("width")) for b in bars]
    assert widths[0] == pytest.approx(320 * result["read_rate"].iloc[0], abs=0.1)
    assert "| mean scroll |" in to_markdown(result, BOUNCE)


def _export(folder: Path) -> Path:
    sim = PublisherSimulator(n_readers=400, n_articles=80, days=5, initial_articles=20,
                             sessions_per_reader=1.0, seed=2)  # fmt: skip
    sim.write_export(folder)
    return folder


def test_recsys_engagement_from_the_worked_examples_config(tmp_path, capsys, monkeypatch):
    export = _export(tmp_path / "export")
    monkeypatch.setenv("PUBLISHER_EXPORT", str(export))
    run = tmp_path / "run"
    code, err, out = run_main("recsys-engagement", [
        "--config-dir", str(EXAMPLE_CONFIGS), "experiment=publisher_log",
        f"hydra.run.dir={run}", "resamples=100",
    ], capsys)  # fmt: skip
    assert code == 0, err[-3000:]
    table = pd.read_csv(run / "engagement.csv")
    sections = set(pd.read_csv(export / "articles.csv")["section"])
    topics = set(table.loc[table["by"] == "topic", "group"])
    assert topics and topics <= sections
    assert table["group"].str.startswith(("short", "medium", "long")).sum() == 3
    views = pd.read_csv(export / "views.csv")
    assert table.loc[0, "views"] == len(views) == table.loc[table["by"] == "topic", "views"].sum()
    read = (views["dwell_seconds"] >= 10).mean()  # bounce_seconds of publisher_export.yaml
    assert table.loc[0, "read_rate"] == pytest.approx(read)
    markdown = (run / "engagement.md").read_text()
    assert "| by | group | articles | views |" in markdown and markdown in out
    bars = ET.parse(run / "engagement.svg").getroot().findall(f".//{SVG}rect[@class='read-rate']")
    assert len(bars) == len(table)
    assert not list(run.glob(".*.tmp"))


def test_recsys_engagement_without_an_item_table_says_what_to_set(tmp_path, capsys):
    export = _export(tmp_path / "export")
    log = ["data=events", f"data.path={export / 'views.csv'}", "data.columns.user=reader",
           "data.columns.item=article", "data.columns.timestamp=time",
           f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    code, err, _ = run_main("recsys-engagement", log, capsys)
    line = one_line(code, err)
    assert "no item table" in line and "data.items.path=" in line
    assert "data.items.columns.topic=" in line
    items = [f"data.items.path={export / 'articles.csv'}", "data.items.columns.item=article"]
    code, err, _ = run_main("recsys-engagement", [*log, *items], capsys)
    line = one_line(code, err)
    assert "no topic column" in line and "data.items.columns.topic=" in line and "section" in line
    assert not (tmp_path / "run" / "engagement.csv").exists()


def test_recsys_engagement_on_the_simulator_names_its_topics(tmp_path, capsys):
    code, err, out = run_main("recsys-engagement", [
        "data=publisher_sim", "data.n_readers=300", "data.n_articles=60", "data.days=4",
        "data.initial_articles=20", "resamples=50", f"hydra.run.dir={tmp_path}",
    ], capsys)  # fmt: skip
    assert code == 0, err[-3000:]
    table = pd.read_csv(tmp_path / "engagement.csv")
    assert set(table.loc[table["by"] == "topic", "group"]) <= set(SECTIONS)
    assert "| length | short" in out
