"""Event logs to interactions, value by value, and clear errors for bad logs."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.confidence import Dwell, EventWeights
from recsys.data.datasets import EventLog
from recsys.errors import DataFormatError, EmptyDataError

COLUMNS = {"user": "user_id", "item": "item_id", "timestamp": "ts", "event_type": "type"}
WEIGHTS = {"view": 1, "like": 4, "purchase": 10}

# u1: session 1 = t 0..365, session 2 = t 10000..10120 (the gap exceeds 1800 s)
# u2: a bounce, an event type without a weight (dropped), a second session
# u3: seven events, dropped as a bot by max_events_per_user=6
LOG = """user_id,item_id,ts,type
u1,a,0,view
u1,b,5,view
u1,a,65,like
u1,c,365,view
u1,a,10000,view
u1,a,10120,purchase
u2,b,50,view
u2,b,58,view
u2,x,70,zzz
u2,c,4000,view
u3,a,1,view
u3,a,2,view
u3,a,3,view
u3,b,4,view
u3,c,5,view
u3,c,6,view
u3,c,7,view
"""


def load(tmp_path: Path, text: str = LOG, name: str = "log.csv", **kwargs) -> EventLog:
    path = tmp_path / name
    path.write_text(text)
    columns = kwargs.pop("columns", COLUMNS)
    weights = {"event_weights": WEIGHTS} if columns.get("event_type") else {}  # needs the types
    rules = {**weights, "max_events_per_user": 6, **kwargs.pop("rules", {})}
    ds = EventLog(str(path), columns, rules=rules, **kwargs)
    ds.data = ds.load()
    return ds


def pair_values(ds: EventLog, feature: str | None = None) -> dict[tuple[str, str], float]:
    data = ds.data
    values = data.matrix.data if feature is None else data.features[feature]
    return {
        (str(data.user_ids[u]), str(data.item_ids[i])): float(v)
        for u, i, v in zip(data.rows(), data.matrix.indices, values)
    }


def assert_pairs(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value), key


def test_sessions_dwell_bounces_repeats_and_types(tmp_path):
    ds = load(tmp_path, rules={"strength": "weighted"})
    nan = float("nan")
    assert_pairs(
        pair_values(ds, "count"),
        {("u1", "a"): 4, ("u1", "b"): 1, ("u1", "c"): 1, ("u2", "b"): 2, ("u2", "c"): 1},
    )
    # repeat visits: distinct sessions with the item
    assert (
        pair_values(ds, "visits")[("u1", "a")] == 2 and pair_values(ds, "visits")[("u2", "b")] == 1
    )
    # dwell = time to the next event in the session; the last event of a session has none
    assert_pairs(
        pair_values(ds, "dwell"),
        {
            ("u1", "a"): 5 + 300 + 120,
            ("u1", "b"): 60,
            ("u1", "c"): nan,
            ("u2", "b"): 8,
            ("u2", "c"): nan,
        },
    )
    assert_pairs(
        pair_values(ds, "bounces"),
        {("u1", "a"): 1, ("u1", "b"): 0, ("u1", "c"): 0, ("u2", "b"): 1, ("u2", "c"): 0},
    )
    assert pair_values(ds, "type:view")[("u1", "a")] == 2
    assert pair_values(ds, "type:purchase")[("u1", "a")] == 1
    # strength = sum of event weights
    assert_pairs(
        pair_values(ds),
        {
            ("u1", "a"): 1 + 4 + 1 + 10,
            ("u1", "b"): 1,
            ("u1", "c"): 1,
            ("u2", "b"): 2,
            ("u2", "c"): 1,
        },
    )
    ts = dict(zip(zip(ds.data.rows(), ds.data.matrix.indices), ds.data.timestamps))
    assert ts[(0, 0)] == 0  # the first time (u1, a) was seen
    # every dropped row is counted
    report = ds.report
    assert report.events_read == 17
    assert sum(report.dropped.values()) == 8
    assert any("zzz" in reason and n == 1 for reason, n in report.dropped.items())
    assert any("max_events_per_user" in reason and n == 7 for reason, n in report.dropped.items())
    assert report.bounces == 2 and report.sessions == 4


def test_confidences_value_by_value(tmp_path):
    ds = load(tmp_path)
    dwell = Dwell(
        alpha=10, scale_seconds=60, bounce_seconds=10, bounce_value=0.05, unknown_value=0.5
    )
    got = dict(zip(pair_values(ds).keys(), dwell.fit(ds.data).values(ds.data)))
    want = {
        ("u1", "a"): 1 + 10 * (1 - math.exp(-425 / 60)),
        ("u1", "b"): 1 + 10 * (1 - math.exp(-1)),
        ("u1", "c"): 1 + 10 * 0.5,  # unknown dwell
        ("u2", "b"): 1 + 10 * 0.05,  # total dwell 8 s: a bounce
        ("u2", "c"): 1 + 10 * 0.5,
    }
    assert_pairs({k: float(v) for k, v in got.items()}, want)
    weights = EventWeights(alpha=0.5, weights={"view": 1, "like": 3, "purchase": 7})
    got = dict(zip(pair_values(ds).keys(), weights.values(ds.data)))
    assert got[("u1", "a")] == pytest.approx(1 + 0.5 * (2 * 1 + 3 + 7))
    assert got[("u2", "b")] == pytest.approx(1 + 0.5 * 2)


def test_count_strength_dropped_bounces_and_given_dwell(tmp_path):
    ds = load(tmp_path, rules={"drop_bounces": True})
    assert_pairs(
        pair_values(ds),
        {("u1", "a"): 3, ("u1", "b"): 1, ("u1", "c"): 1, ("u2", "b"): 1, ("u2", "c"): 1},
    )
    assert any("bounces" in r and n == 2 for r, n in ds.report.dropped.items())

    text = "uid,iid,time,secs,sid\n1,10,2024-01-01T00:00:00,3,s1\n1,10,2024-01-01T00:01:00,30,s2\n"
    text += "2,11,2024-01-01T00:00:00+02:00,400,s9\n"
    cols = {"user": "uid", "item": "iid", "timestamp": "time", "dwell": "secs", "session": "sid"}
    ds = load(tmp_path, text, "given.csv", columns=cols, rules={"strength": "dwell"})
    assert_pairs(pair_values(ds), {("1", "10"): 33, ("2", "11"): 400})
    assert pair_values(ds, "visits")[("1", "10")] == 2
    assert sorted(ds.data.timestamps.tolist()) == [1704060000, 1704067200]  # +02:00 respected


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_other_formats(tmp_path, fmt):
    frame = pd.read_csv(pd.io.common.StringIO(LOG))
    path = tmp_path / f"log.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    ds = EventLog(str(path), COLUMNS, rules={"event_weights": WEIGHTS})
    data = ds.load()
    assert data.nnz == 8 and data.n_users == 3


@pytest.mark.parametrize(
    ("text", "columns", "error", "message"),
    [
        (
            "user_id,item_id,time\nu,a,1\n",
            COLUMNS,
            DataFormatError,
            "column 'ts' (data.columns.timestamp) not found; the file has columns: user_id, "
            "item_id, time",
        ),
        (
            "user_id,item_id,ts,type\nu,a,1,view\nu,b,yesterday,view\n",
            COLUMNS,
            DataFormatError,
            "row 2 (line 3), column 'ts': cannot parse timestamp 'yesterday'",
        ),
        (
            "user_id,item_id,ts,d\nu,a,1,5\nu,b,2,-3\n",
            {**COLUMNS, "event_type": None, "dwell": "d"},
            DataFormatError,
            "row 2 (line 3), column 'd': dwell must be a finite non-negative number of seconds, "
            "got -3",
        ),
        (
            "user_id,item_id,ts,d\nu,a,1,5\nu,b,2,\n",
            {**COLUMNS, "event_type": None, "dwell": "d"},
            DataFormatError,
            "row 2 (line 3), column 'd': dwell must be",
        ),
        ("", COLUMNS, EmptyDataError, "the file is empty"),
        ("user_id,item_id,ts,type\n", COLUMNS, EmptyDataError, "has a header but no rows"),
        (
            "user_id,item_id,ts,type\nu,,1,view\n",
            COLUMNS,
            DataFormatError,
            "row 1 (line 2), column 'item_id': the item is missing",
        ),
    ],
)
def test_bad_logs_name_file_row_and_column(tmp_path, text, columns, error, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(error) as e:
        EventLog(str(path), columns).load()
    assert str(path) in str(e.value)
    assert message in str(e.value)


def test_unknown_event_type_can_be_an_error(tmp_path):
    with pytest.raises(DataFormatError, match="row 9, column 'event_type': event type 'zzz'"):
        load(tmp_path, rules={"unknown_event_types": "error"})


def test_values_are_aggregated(tmp_path):
    text = "user_id,item_id,ts,price\nu,a,1,2.5\nu,a,9999,4\nu,b,3,1\n"
    cols = {**COLUMNS, "event_type": None, "value": "price"}
    ds = load(tmp_path, text, "v.csv", columns=cols, rules={"strength": "value"})
    assert_pairs(pair_values(ds), {("u", "a"): 6.5, ("u", "b"): 1.0})
    # a@1 -> b@3: 2 s; b and a@9999 end their sessions: unknown, not guessed
    assert_pairs(pair_values(ds, "dwell"), {("u", "a"): 2.0, ("u", "b"): float("nan")})


ID_CASES = [
    ["1", "22", "-3", "0", "-0"],
    ["007", "1"],  # a leading zero: text
    ["+5", "1"],
    [" 5", "1"],
    ["5.0", "1"],
    ["1e3", "1"],
    ["9223372036854775807", "-9223372036854775808"],  # int64's ends
    ["9223372036854775808", "1"],  # past them: text
    ["-9223372036854775809", "1"],
    ["12345678901234567890", "1"],  # 20 digits
    ["abc", "1"],
]


@pytest.mark.parametrize("values", ID_CASES)
def test_id_columns_read_as_a_regex_and_pandas_would(values):
    """The id rule (int64 where every value is a plain integer that fits, else text) by
    pyarrow's compute functions equals a regular expression per value and pandas' parse."""
    import re

    import numpy as np

    from recsys.data.events import _as_ids

    got = _as_ids(pd.Series(values, dtype=object), lambda i: f"row {i}")
    plain = all(re.fullmatch(r"-?(0|[1-9][0-9]{0,18})", v) for v in values)
    fits = plain and all(-(2**63) <= int(v) < 2**63 for v in values)
    if fits:
        assert got.dtype == np.int64 and got.tolist() == [int(v) for v in values]
    else:
        assert not pd.api.types.is_integer_dtype(got) and got.tolist() == values
