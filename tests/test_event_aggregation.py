"""Events to pairs by one sort and passes over the pairs' runs (``events._aggregate``)
against pandas' groupby (``_aggregate_by_groupby``), to the bit, on random logs with every
feature: sessions by gap or given, dwell known and unknown, event types with weights that
do not add up exactly, values and scroll with gaps, two parts, integer and text ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.events import (
    EventReport,
    EventRules,
    _aggregate,
    _aggregate_by_groupby,
    _sessions_and_weights,
    events_to_interactions,
)


def random_events(seed: int, n: int, text_ids: bool, session: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 40, n)
    items = rng.zipf(1.6, n) % 25  # popular items: pairs with many events (>= 8) as well
    ev = pd.DataFrame(
        {
            "user": [f"u{u}" for u in users] if text_ids else users,
            "item": [f"i{i}" for i in items] if text_ids else items,
            "timestamp": rng.integers(0, 20_000, n),
            "event_type": rng.choice(["view", "like", "buy"], n, p=[0.7, 0.2, 0.1]),
            "dwell": np.where(rng.random(n) < 0.2, np.nan, rng.exponential(40.0, n)),
            "value": np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 1e3 / 7),
            "scroll": np.where(rng.random(n) < 0.5, np.nan, rng.random(n)),
            "part": rng.choice(["train", "test"], n, p=[0.8, 0.2]),
            "row": np.arange(2, n + 2),
        }
    )
    if session:
        ev["session"] = rng.integers(0, 30, n)
    return ev


def frame_of(ev: pd.DataFrame, rules: EventRules) -> tuple[pd.DataFrame, bool, bool]:
    return _sessions_and_weights(ev, rules, "test", EventReport(events_read=len(ev)))


def same_frames(ours: pd.DataFrame, theirs: pd.DataFrame, keys: list[str]) -> None:
    theirs = theirs.sort_values(keys, kind="stable").reset_index(drop=True)
    assert list(ours.columns) == list(theirs.columns)
    assert len(ours) == len(theirs)
    for column in ours.columns:
        a, b = ours[column].to_numpy(), theirs[column].to_numpy()
        if a.dtype.kind == "f":
            # to the bit: the same floats, NaN where theirs is NaN
            np.testing.assert_array_equal(a.view(np.int64), b.astype(np.float64).view(np.int64))
        else:
            assert (a == b).all(), column


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("text_ids", [False, True])
@pytest.mark.parametrize("session", [False, True])
def test_pairs_equal_pandas_groupby_to_the_bit(seed, text_ids, session):
    ev = random_events(seed, 3000, text_ids, session)
    rules = EventRules(event_weights={"view": 0.1, "like": 0.7, "buy": 3.3}, strength="weighted")
    frame, has_types, timed = frame_of(ev, rules)
    for keys in (["user", "item"], ["part", "user", "item"]):
        same_frames(_aggregate(frame, keys, has_types, timed),
                    _aggregate_by_groupby(frame, keys, has_types, timed), keys)  # fmt: skip


def test_without_times_types_values_or_dwell():
    ev = random_events(3, 500, False, False).drop(
        columns=["timestamp", "event_type", "value", "scroll", "dwell"]
    )
    frame, has_types, timed = frame_of(ev, EventRules())
    assert not has_types and not timed
    keys = ["user", "item"]
    same_frames(_aggregate(frame, keys, False, False),
                _aggregate_by_groupby(frame, keys, False, False), keys)  # fmt: skip


def test_the_interactions_are_those_of_the_groupby(monkeypatch):
    """The whole path to Interactions (CSR, strengths, times, every feature) is unchanged
    when the groupby does the aggregation."""
    import recsys.data.events as events

    ev = random_events(4, 2000, True, False).drop(columns=["part"])
    rules = EventRules(event_weights={"view": 0.1, "like": 0.7, "buy": 3.3}, strength="weighted")
    ours, _ = events_to_interactions(ev, rules)
    monkeypatch.setattr(events, "_aggregate", events._aggregate_by_groupby)
    theirs, _ = events_to_interactions(ev, rules)
    assert (ours.matrix != theirs.matrix).nnz == 0
    np.testing.assert_array_equal(ours.matrix.data, theirs.matrix.data)
    np.testing.assert_array_equal(ours.timestamps, theirs.timestamps)
    assert list(ours.features) == list(theirs.features)
    for name in ours.features:
        np.testing.assert_array_equal(ours.features[name], theirs.features[name])


@pytest.mark.parametrize("timed", [True, False])
def test_repeated_rows_are_counted_as_a_comparison_of_every_row_would(timed):
    """Copies planted at random places (and rows that differ in one column only, which are
    no copies) are counted as ``DataFrame.duplicated`` over the whole log counts them."""
    from recsys.data.events import _duplicate_rows, sort_into_sessions

    rng = np.random.default_rng(5)
    ev = random_events(5, 2000, True, False).drop(columns=["dwell", "value", "scroll"])
    copies = ev.iloc[rng.integers(0, len(ev), 150)].copy()
    near = ev.iloc[rng.integers(0, len(ev), 100)].copy()
    near["event_type"] = "share"  # the same user and time, another type: not a copy
    ev = pd.concat([ev, copies, copies.iloc[:40], near], ignore_index=True)
    ev["row"] = np.arange(len(ev))
    ev["file"] = rng.choice(["a.csv", "b.csv"], len(ev))
    if not timed:
        ev = ev.drop(columns=["timestamp"])
    want = int(ev.drop(columns=["row", "file", "part"]).duplicated().sum())
    assert want >= 150
    assert _duplicate_rows(sort_into_sessions(ev, 1800)[0]) == want


@pytest.mark.parametrize("session", [False, True])
def test_a_log_already_in_order_is_left_as_the_sort_would_leave_it(session):
    """``sort_into_sessions`` skips its sort for a log already in user, (session,) time,
    file and row order: the same frame as the stable sort of it, and of it shuffled."""
    from recsys.data.events import sort_into_sessions

    ev = random_events(6, 3000, True, session)
    ev["file"] = np.random.default_rng(6).choice(["a.csv", "b.csv"], len(ev))
    keys = ["user", *(["session"] if session else []), "timestamp", "file", "row"]
    ordered = ev.sort_values(keys, kind="stable").reset_index(drop=True)
    want, want_new = sort_into_sessions(ev, 1800)  # shuffled: sorted by pandas
    got, got_new = sort_into_sessions(ordered, 1800)  # in order: not sorted again
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(got, ordered)
    np.testing.assert_array_equal(got_new, want_new)
    swapped = ordered.copy()
    swapped.loc[[10, 11]] = swapped.loc[[11, 10]].to_numpy()  # one pair out of order
    if not swapped[keys].equals(ordered[keys]):
        pd.testing.assert_frame_equal(sort_into_sessions(swapped, 1800)[0], want)


def test_interactions_from_pairs_in_order_equal_those_from_the_pairs_shuffled():
    from recsys.data.interactions import Interactions

    rng = np.random.default_rng(7)
    users = np.array([f"u{u:03d}" for u in rng.integers(0, 50, 400)], dtype=object)
    items = rng.integers(0, 30, 400)
    order = np.lexsort((items, users))
    strengths = rng.random(400) + 0.1
    times = rng.integers(0, 1000, 400)
    feats = {"f": rng.random(400)}
    a = Interactions.from_arrays(users[order], items[order], strengths[order], times[order],
                                 features={"f": feats["f"][order]})  # fmt: skip
    b = Interactions.from_arrays(users, items, strengths, times, features=feats)
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    assert (a.matrix != b.matrix).nnz == 0
    np.testing.assert_array_equal(a.matrix.data, b.matrix.data)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.features["f"], b.features["f"])
