"""The closed-loop site (``recsys.simulation``): sanity checks against what must hold in any
sound simulator of a block. The intervals here are computed in this file (a bootstrap over
readers: sessions of one reader are not independent), independently of the A/B analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.datasets import PublisherSimulator
from recsys.errors import RecsysError
from recsys.simulation.loop import ClosedLoop, Response
from recsys.simulation.policies import MostRecent, Oracle, RandomRecent

HIGHER = {"articles_per_session": 1, "single_article_sessions": -1, "time_on_site": 1,
          "bounce_rate": -1, "clicks_per_block": 1}  # fmt: skip


def reader_table(views: pd.DataFrame, shown: pd.DataFrame) -> pd.DataFrame:
    """Per (reader, arm): sessions, views, single-article sessions, dwell, bounces, blocks,
    clicks: the sums every metric is a ratio of."""
    per_session = views.groupby(["arm", "reader", "session"]).agg(
        n=("article", "size"), dwell=("dwell_seconds", "sum"),
        bounces=("dwell_seconds", lambda d: int((d < 10).sum())),
    )  # fmt: skip
    table = per_session.groupby(["arm", "reader"]).agg(
        sessions=("n", "size"), views=("n", "sum"), single=("n", lambda n: int((n == 1).sum())),
        dwell=("dwell", "sum"), bounces=("bounces", "sum"),
    )  # fmt: skip
    blocks = shown.groupby(["arm", "reader"]).agg(
        blocks=("step", "size"), clicks=("clicked", "sum")
    )  # one row per slot: blocks counted in slots, divided back by k below
    return table.join(blocks, how="left").fillna(0).reset_index()


def metrics(t: pd.DataFrame, k: int) -> dict[str, float]:
    return {
        "articles_per_session": t["views"].sum() / t["sessions"].sum(),
        "single_article_sessions": t["single"].sum() / t["sessions"].sum(),
        "time_on_site": t["dwell"].sum() / t["sessions"].sum(),
        "bounce_rate": t["bounces"].sum() / t["views"].sum(),
        "clicks_per_block": t["clicks"].sum() / (t["blocks"].sum() / k),
    }


def differences(table: pd.DataFrame, a: str, b: str, k: int, resamples=300, seed=0) -> dict:
    """Metric of arm ``a`` minus arm ``b`` and its 95% interval, readers resampled."""
    rng = np.random.default_rng(seed)
    readers = table["reader"].unique()
    by = {arm: t.set_index("reader") for arm, t in table.groupby("arm")}
    point = {m: metrics(by[a], k)[m] - metrics(by[b], k)[m] for m in HIGHER}
    draws = {m: [] for m in HIGHER}
    for _ in range(resamples):
        pick = rng.choice(readers, len(readers))
        ta = by[a].reindex(pick).dropna()
        tb = by[b].reindex(pick).dropna()
        ma, mb = metrics(ta, k), metrics(tb, k)
        for m in HIGHER:
            draws[m].append(ma[m] - mb[m])
    return {m: (point[m], *np.percentile(draws[m], [2.5, 97.5])) for m in HIGHER}


@pytest.fixture(scope="module")
def site():
    sim = PublisherSimulator(n_readers=3000, n_articles=700, days=20, initial_articles=100,
                             sessions_per_reader=8.0, seed=4)  # fmt: skip
    response = Response()
    arms = {"most_recent": MostRecent(), "oracle": Oracle(2.0, response),
            "random": RandomRecent(pool=200, seed=1)}  # fmt: skip
    loop = ClosedLoop(sim, arms, MostRecent(), history_days=10, test_days=10, k=10,
                      response=response, seed=2)  # fmt: skip
    logs = loop.run(progress=lambda line: None)
    return logs, reader_table(logs.views, logs.impressions)


def test_the_logging_block_in_the_test_reproduces_the_logged_engagement(site):
    logs, table = site
    diff = differences(table, "most_recent", "site", k=10)
    for metric, (value, lo, hi) in diff.items():
        assert lo <= 0 <= hi, f"{metric}: most_recent arm - history {value:+.4f} [{lo}, {hi}]"
    lengths = logs.views.groupby(["arm", "session"]).size()
    shares = {arm: np.bincount(np.minimum(lengths[arm].to_numpy(), 5), minlength=6)[1:]
              / len(lengths[arm]) for arm in ("site", "most_recent")}  # fmt: skip
    np.testing.assert_allclose(shares["most_recent"], shares["site"], atol=0.03)


def test_an_oracle_block_beats_most_recent_on_every_metric(site):
    _, table = site
    for metric, (value, lo, hi) in differences(table, "oracle", "most_recent", k=10).items():
        better = HIGHER[metric] * np.asarray([lo, hi])
        assert (better > 0).all(), f"{metric}: oracle - most recent {value:+.4f} [{lo}, {hi}]"


def test_a_block_of_random_articles_does_not(site):
    _, table = site
    diff = differences(table, "random", "most_recent", k=10)
    worse = [m for m, (v, lo, hi) in diff.items() if (HIGHER[m] * np.asarray([lo, hi]) < 0).all()]
    assert worse, diff  # significantly worse somewhere (clicks: stale articles draw fewer)
    assert "clicks_per_block" in worse


def test_logs_are_the_export_format_with_the_ab_columns(site, tmp_path):
    logs, _ = site
    paths = logs.write(tmp_path)
    views = pd.read_csv(paths["views"])
    assert list(views.columns) == ["reader", "article", "time", "session", "dwell_seconds",
                                   "source", "arm", "position"]  # fmt: skip
    widget = views[views["source"] == "widget"]
    assert widget["position"].notna().all() and views.loc[views["source"] != "widget",
                                                           "position"].isna().all()  # fmt: skip
    shown = pd.read_csv(paths["impressions"])
    random_arm = shown[shown["arm"] == "random"]
    assert (random_arm["propensity"] < 0.01).all()
    assert (shown.loc[shown["arm"] == "oracle", "propensity"] == 1).all()
    clicks = shown[shown["clicked"] == 1].groupby("session").size().sum()
    assert clicks >= len(widget)  # every followed click is logged (several slots may be clicked)
    assignment = pd.read_csv(paths["assignment"])
    assert len(assignment) == 3000 and set(assignment["arm"]) == {"most_recent", "oracle",
                                                                  "random"}  # fmt: skip
    # no block shows an article before it is published, nor one read in the session
    epoch = pd.Timestamp(0, tz="UTC")
    times = (pd.to_datetime(shown["time"]) - epoch).dt.total_seconds().to_numpy()
    published = pd.read_csv(paths["articles"], index_col="article")["published"]
    published = (pd.to_datetime(published) - epoch).dt.total_seconds()
    published = published.reindex(shown["article"]).to_numpy()
    assert times.min() > 1.5e9 and (published <= times + 1).all()
    first = shown.groupby(["session", "step"])["article"].agg(list)
    read = views.groupby("session")["article"].agg(list)
    for (session, step), articles in first.head(300).items():
        assert not set(articles) & set(read[session][: step + 1])


def test_bad_settings_are_one_line(tmp_path):
    sim = PublisherSimulator(n_readers=50, n_articles=60, days=5, initial_articles=20, seed=0)
    with pytest.raises(RecsysError, match="exceeds the world's days"):
        ClosedLoop(sim, {"a": MostRecent()}, MostRecent(), history_days=4, test_days=3)
    with pytest.raises(RecsysError, match="response.click_scale"):
        Response(click_scale=1.5)


def test_recsys_simulate_runs_a_trained_arm_from_config_and_analyses_the_test(tmp_path):
    from recsys.config import compose_run_config
    from recsys.simulation.run import simulate

    train = "['model=hybrid','model.n_min=4','model.factors=8','trainer.max_epochs=3']"
    arm = f"+arms.model={{policy:model,train:{train},retrain_days:2,fresh_days:3}}"
    overrides = ["world.n_readers=600", "world.n_articles=200", "world.days=9",
                 "world.initial_articles=50", "world.sessions_per_reader=6", "history_days=5",
                 "test_days=4", "~arms.random", arm, "resamples=50"]  # fmt: skip
    cfg = compose_run_config("simulate", overrides, tmp_path, root_dir=tmp_path)
    summary = simulate(cfg)
    assert summary["control"] == "most_recent" and set(summary["arms"]) == {"most_recent",
                                                                              "model"}  # fmt: skip
    assert "articles_per_session" in summary["differences"]["model"]
    for name in ("views", "impressions", "assignment", "articles"):
        assert (tmp_path / "logs" / f"{name}.csv").is_file()
    days = sorted(p.name for p in (tmp_path / "models" / "model").iterdir())
    assert days == ["day_000", "day_002"]  # trained on the history, retrained on day 2
    views = pd.read_csv(tmp_path / "logs" / "views.csv")
    assert set(views["arm"]) == {"site", "most_recent", "model"}


def test_recsys_simulate_bad_arms_are_one_line(tmp_path):
    from recsys.config import compose_run_config
    from recsys.errors import ConfigError
    from recsys.simulation.run import simulate

    cfg = compose_run_config("simulate", ["+arms.x={policy:best}"], tmp_path, root_dir=tmp_path)
    with pytest.raises(ConfigError, match="arm x: policy must be one of"):
        simulate(cfg)
    cfg = compose_run_config("simulate", ["+arms.x={policy:model}"], tmp_path, root_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs train="):
        simulate(cfg)
