"""An event log's item table (a CMS export): validation errors that name the file, row and
column; items never viewed kept as candidates; content models and most-recent on the log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.data.datasets import EventLog
from recsys.errors import DataFormatError
from recsys.runs.fit import train

COLUMNS = {"user": "reader", "item": "article", "timestamp": "time", "source": "src"}
ITEM_COLUMNS = {"item": "id", "title": "title", "topic": "section", "published": "pub",
                "length": "words"}  # fmt: skip


def write_files(folder, items: pd.DataFrame | None = None, extra_events=()) -> tuple[str, str]:
    """A log of 12 readers on articles a0..a5, and a table of a0..a7 (a6, a7 never viewed)."""
    rows = [(f"r{u}", f"a{(u + j) % 6}", 1_700_000_000 + 3600 * u + 60 * j, "widget")
            for u in range(12) for j in range(3)]  # fmt: skip
    rows += list(extra_events)
    events = pd.DataFrame(rows, columns=["reader", "article", "time", "src"])
    events.to_csv(folder / "views.csv", index=False)
    if items is None:
        items = pd.DataFrame(
            {
                "id": [f"a{i}" for i in range(8)],
                "title": [f"story {i} about {'sport' if i % 2 else 'politics'}" for i in range(8)],
                "section": ["sport" if i % 2 else "politics" for i in range(8)],
                "pub": [f"2023-11-{10 + i:02d}T08:00:00Z" for i in range(8)],
                "words": [300 + 100 * i for i in range(8)],
                "author": [f"writer{i % 3}" for i in range(8)],
            }
        )
    items.to_csv(folder / "articles.csv", index=False)
    return str(folder / "views.csv"), str(folder / "articles.csv")


def log_with_table(views: str, articles: str, **items) -> EventLog:
    return EventLog(views, COLUMNS, items={"path": articles, "columns": ITEM_COLUMNS, **items})


def test_items_never_viewed_are_candidates_with_text_times_and_features(tmp_path):
    data = log_with_table(*write_files(tmp_path))
    interactions = data.load()
    assert list(interactions.item_ids) == [f"a{i}" for i in range(8)]
    counts = np.bincount(interactions.matrix.indices, minlength=8)
    assert counts[6] == counts[7] == 0 and (counts[:6] > 0).all()
    text = data.item_text()
    assert text["a7"] == "story 7 about sport sport"  # title and topic joined
    published = data.item_published(interactions.item_ids)
    assert published[7] - published[6] == 86_400
    assert list(data.item_topics(["a1", "a2"])) == ["sport", "politics"]
    assert data.item_table().frame.loc["a4", "author"] == "writer1"  # other columns kept
    lengths = interactions.features["item_length"]  # per pair: its item's length
    np.testing.assert_array_equal(lengths, 300 + 100 * interactions.matrix.indices)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda t: t.drop(columns=["section"]),
            r"column 'section' \(data.items.columns.topic\) "
            "not found; the file has columns: id, title, pub, words, author",
        ),
        (
            lambda t: pd.concat([t, t.iloc[[2]]]),
            r"articles.csv, row 9 \(line 10\), column 'id': "
            "item id 'a2' is also on row 3",
        ),
        (
            lambda t: t.assign(pub=t["pub"].where(t.index != 4, "next tuesday")),
            r"articles.csv, row 5 \(line 6\), column 'pub': cannot parse timestamp 'next tuesday'",
        ),
        (
            lambda t: t.assign(words=t["words"].astype(object).where(t.index != 1, "long")),
            r"row 2 \(line 3\), column 'words': length must be a non-negative number",
        ),
        (
            lambda t: t.assign(id=t["id"].where(t.index != 3, None)),
            r"row 4 \(line 5\), column 'id': the item id is missing",
        ),
    ],
    ids=["missing column", "duplicate id", "unparseable time", "bad length", "missing id"],
)
def test_item_table_errors_name_file_row_and_column(tmp_path, change, message):
    base = pd.DataFrame(
        {"id": [f"a{i}" for i in range(8)], "title": "t", "section": "s",
         "pub": "2023-11-10", "words": 500, "author": "w"}
    )  # fmt: skip
    views, articles = write_files(tmp_path, change(base))
    with pytest.raises(DataFormatError, match=message):
        log_with_table(views, articles).load()


def test_events_on_items_missing_from_the_table_are_counted_dropped_or_an_error(tmp_path):
    stray = [("r0", "zz", 1_700_000_500, "organic"), ("r1", "zz", 1_700_004_000, "organic")]
    views, articles = write_files(tmp_path, extra_events=stray)
    keeping = log_with_table(views, articles)
    kept = keeping.load()
    assert "zz" in list(kept.item_ids)
    assert keeping.report.items_missing_from_table == 2 and not keeping.report.dropped
    dropping = log_with_table(views, articles, unknown_items="drop")
    dropped = dropping.load()
    assert "zz" not in list(dropped.item_ids)
    assert dropping.report.dropped["events on items missing from the item table"] == 2
    assert dropping.report.events_read == 38
    with pytest.raises(DataFormatError, match=r"event row 37\).*unknown_items=keep"):
        log_with_table(views, articles, unknown_items="error").load()


def overrides(views: str, articles: str, *more: str) -> list[str]:
    return ["data=events", f"data.path={views}", "data.columns.user=reader",
            "data.columns.item=article", "data.columns.timestamp=time",
            "data.columns.source=src", f"data.items.path={articles}", "data.items.columns.item=id",
            "data.items.columns.title=title", "data.items.columns.topic=section",
            "data.items.columns.published=pub", "data.items.columns.length=words",
            "split.val_ratio=0", "logger=[]", *more]  # fmt: skip


def test_content_hybrid_and_most_recent_train_on_an_event_log_with_a_table(tmp_path):
    views, articles = write_files(tmp_path)
    settings = {
        "content": ["model.dims=4"],
        "most_recent": [],
        "hybrid": ["model.dims=4", "model.factors=4", "model.regularization=0.1"],
    }
    for model, more in settings.items():
        args = overrides(views, articles, f"model={model}", "trainer.max_epochs=2", *more)
        cfg = compose_config("train", args, tmp_path / model)
        _, metrics = train(cfg)
        assert 0 <= metrics["test/ndcg@20"] <= 1
    dm = RecsysDataModule.from_config(compose_config("train", overrides(views, articles),
                                                     tmp_path / "dm"))  # fmt: skip
    published = dm.training_data.item_published
    assert np.all(np.diff(published) == 86_400)  # the table's times, not first views
    assert dm.training_data.item_text[6].startswith("story 6")
