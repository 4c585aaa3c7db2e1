"""Event logs are read as written or refused with the file and line: ids as ids (at and beyond
2^63), unbalanced quotes, non-UTF-8 bytes, a timestamp unit slip, event weights without event
types, ids that are lists; and what reading dropped is reported on every run, cache or not."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from recsys.data.confidence import Linear
from recsys.data.datamodule import RecsysDataModule
from recsys.data.datasets import EventLog
from recsys.data.events import EventRules, events_to_interactions, read_events
from recsys.data.splits import RandomHoldout
from recsys.errors import DataFormatError, DataNotFoundError, RecsysError

COLUMNS = {"user": "user", "item": "item", "timestamp": "t"}
T0 = 1_700_000_000


def write(path, rows: list[str], header: str = "user,item,t") -> str:
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def test_ids_at_and_beyond_2_63_stay_apart(tmp_path):
    """Readers 2^63 - 1, 2^63, 2^63 + 1 (uint64 range) and 2^53, 2^53 + 1 (equal as floats),
    each with one session of 3 views at the same times: 5 readers, 5 sessions."""
    ids = [2**63 - 1, 2**63, 2**63 + 1, 2**53, 2**53 + 1]
    rows = [f"{u},a{k},{T0 + 60 * k}" for u in ids for k in range(3)]
    ev = read_events(write(tmp_path / "big.csv", rows), COLUMNS)
    data, report = events_to_interactions(ev, EventRules())
    assert report.sessions == 5 and data.n_users == 5 and data.nnz == 15
    assert sorted(map(str, data.user_ids)) == sorted(map(str, ids))
    small = read_events(write(tmp_path / "small.csv", ["7,a,1700000000", "-3,b,1700000001"]),
                        COLUMNS)  # fmt: skip
    assert small["user"].dtype == np.int64  # plain integers stay integers
    padded = read_events(write(tmp_path / "pad.csv", ["007,a,1700000000", "7,b,1700000001"]),
                         COLUMNS)  # fmt: skip
    assert padded["user"].tolist() == ["007", "7"]  # two ids, as written


def test_an_unbalanced_quote_names_its_line(tmp_path):
    rows = [f"u{u},a{u % 7},{T0 + u}" for u in range(150)]
    rows[19] = 'u19,"a5,1700000019'  # opened on line 21 ...
    rows[119] = 'u119,a0",1700000119'  # ... and closed 100 lines later
    with pytest.raises(DataFormatError, match=r"q.csv, line 21: an unbalanced quote.*50 rows"):
        read_events(write(tmp_path / "q.csv", rows), COLUMNS)


def test_non_utf8_bytes_name_the_line_and_the_encoding_option(tmp_path):
    path = tmp_path / "latin.csv"
    rows = [f"u{u},a{u % 5},{T0 + u}" for u in range(40)]
    rows[30] = f"r\xe9my,a1,{T0 + 30}"
    path.write_bytes(("user,item,t\n" + "\n".join(rows) + "\n").encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin.csv, line 32: byte 0xe9 is not valid utf-8"):
        read_events(path, COLUMNS)
    ev = read_events(path, COLUMNS, encoding="latin-1")
    assert "r\xe9my" in set(ev["user"])


def test_a_timestamp_unit_slip_is_named_with_the_unit_it_looks_like(tmp_path, caplog):
    ms = [f"u{u},a{u % 5},{(T0 + u) * 1000}" for u in range(20)]
    with pytest.raises(DataFormatError, match=r"row 1 .*after the year 2100; it looks like 'ms'"):
        read_events(write(tmp_path / "ms.csv", ms), COLUMNS)
    assert len(read_events(tmp_path / "ms.csv", COLUMNS, timestamp_unit="ms")) == 20
    seconds = [f"u{u},a{u % 5},{T0 + u}" for u in range(20)]
    with caplog.at_level(logging.WARNING):
        read_events(write(tmp_path / "s.csv", seconds), COLUMNS, timestamp_unit="ms")
    assert "if they are unix time in 's', set data.timestamp_unit=s" in caplog.text
    negative = [*seconds[:5], "u9,a1,-40", *seconds[5:]]
    with pytest.raises(DataFormatError, match=r"row 6 \(line 7\).*negative timestamp -40"):
        read_events(write(tmp_path / "neg.csv", negative), COLUMNS)


def test_event_weights_without_an_event_type_column_are_an_error(tmp_path):
    ev = read_events(write(tmp_path / "e.csv", [f"u1,a{k},{T0 + k}" for k in range(3)]), COLUMNS)
    with pytest.raises(RecsysError, match="event_weights weighs event types, but no event-type"):
        events_to_interactions(ev, EventRules(event_weights={"view": 1, "buy": 5}))


def test_ids_that_are_lists_or_mixed_types(tmp_path):
    path = tmp_path / "e.jsonl"
    lines = [{"user": 5, "item": "a", "t": T0}, {"user": "x", "item": "b", "t": T0 + 1},
             {"user": 5, "item": "c", "t": T0 + 2}]  # fmt: skip
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ev = read_events(path, COLUMNS)
    assert ev["user"].tolist() == ["5", "x", "5"]  # one id type: strings, as written
    lines[1]["item"] = ["a", "b"]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    with pytest.raises(
        DataFormatError, match=r"e.jsonl, row 2, column 'item': \['a', 'b'\] is not"
    ):
        read_events(path, COLUMNS)


def test_a_folder_given_as_the_log_says_so(tmp_path):
    with pytest.raises(DataNotFoundError, match="is a folder, not an event log file"):
        read_events(tmp_path, COLUMNS)


def test_the_drop_report_is_shown_on_a_cache_hit_too(tmp_path, caplog):
    rows = [f"u{u},a{(u + k) % 9},{T0 + 100 * u + k}" for u in range(30) for k in range(4)]
    rows += [f"bot,a{k % 9},{T0 + 5000 + k}" for k in range(60)]  # a bot: 60 events
    log = write(tmp_path / "log.csv", rows)

    def datamodule():
        dataset = EventLog(log, COLUMNS, rules={"max_events_per_user": 50})
        return RecsysDataModule(dataset, RandomHoldout(), Linear(), seed=0,
                                cache_path=tmp_path / "cache" / "log.npz")  # fmt: skip

    for hit in (False, True):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            dm = datamodule()
            dm.setup("fit")
        assert dm.cache_hit is hit
        assert "dropped 60 events: 1 users with more than 50 events" in caplog.text
    pd.testing.assert_index_equal(
        pd.Index(dm.user_ids), pd.Index(sorted(f"u{u}" for u in range(30)))
    )
