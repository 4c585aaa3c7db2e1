"""The publisher simulator: seeded, causal, its widget shapes exposure, dwell follows the
ground-truth affinity, and its log reads back through data=events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.datasets import EventLog, PublisherSimulator

SMALL = dict(n_readers=800, n_articles=300, initial_articles=40, days=20)


def test_same_seed_same_log_and_another_seed_another():
    a = PublisherSimulator(**SMALL, seed=4).events()
    pd.testing.assert_frame_equal(a, PublisherSimulator(**SMALL, seed=4).events())
    assert not a.equals(PublisherSimulator(**SMALL, seed=5).events())


@pytest.mark.parametrize("policy", ["most_recent", "most_popular", "random"])
def test_no_view_before_publication_and_the_widget_shows_what_its_policy_says(policy):
    sim = PublisherSimulator(**SMALL, policy=policy, seed=1)
    ev, truth = sim.events(), sim.truth
    assert (truth.published[ev["item"].to_numpy()] <= ev["timestamp"].to_numpy() + 1).all()
    assert set(ev["source"]) == {"widget", "organic"}
    widget = ev[ev["source"] == "widget"]
    if policy == "most_recent":  # one of the widget_size latest at the session's start
        start = ev.groupby("session")["timestamp"].transform("min")[widget.index].to_numpy()
        available = np.searchsorted(truth.published, start, side="right")
        assert (widget["item"].to_numpy() >= available - sim.widget_size - 1).all()
    if policy == "most_popular":  # one slate a day: few distinct articles per day
        per_day = widget.groupby(widget["timestamp"] // 86_400)["item"].nunique()
        assert per_day.max() <= sim.widget_size
    share = (ev["source"] == "widget").mean()
    assert abs(share - sim.widget_share) < 0.05


def test_dwell_and_bounces_follow_the_true_affinity():
    sim = PublisherSimulator(**SMALL, seed=2)
    ev = sim.events()
    users, items = ev["user"].to_numpy(), ev["item"].to_numpy()
    aff = sim.truth.affinity()[users, items]
    high, low = aff > np.quantile(aff, 0.75), aff < np.quantile(aff, 0.25)
    bounce = ev["dwell"].to_numpy() < 10
    assert bounce[low].mean() > bounce[high].mean() + 0.3
    assert np.median(ev["dwell"][high]) > 3 * np.median(ev["dwell"][low])
    assert np.corrcoef(pd.Series(aff).rank(), ev["dwell"].rank())[0, 1] > 0.4


def test_the_written_log_reads_back_as_the_same_interactions(tmp_path):
    rules = {"strength": "dwell", "bounce_seconds": 10}
    sim = PublisherSimulator(**SMALL, seed=3, rules=rules)
    direct = sim.load()
    path = sim.write_events(tmp_path / "log.csv")
    columns = {"user": "user", "item": "item", "timestamp": "timestamp", "session": "session",
               "dwell": "dwell"}  # fmt: skip
    again = EventLog(str(path), columns, rules=rules).load()
    assert (direct.matrix != again.matrix).nnz == 0
    np.testing.assert_array_equal(direct.user_ids, again.user_ids)
    ev = sim.events()
    pair = ev.groupby(["user", "item"])["dwell"].sum()
    u, i = direct.user_ids[3], direct.matrix[3].indices[0]
    assert direct.matrix[3, i] == pytest.approx(pair[(u, direct.item_ids[i])], rel=1e-5)


def test_about_a_million_events_in_seconds():
    sim = PublisherSimulator(n_readers=60_000, n_articles=5_000, seed=0)
    assert len(sim.events()) > 800_000  # the timing is in the test log, not asserted


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="policy"):
        PublisherSimulator(policy="trending")
    with pytest.raises(ValueError, match="widget_share"):
        PublisherSimulator(widget_share=1.5)
