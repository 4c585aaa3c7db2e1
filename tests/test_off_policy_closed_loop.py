"""Off-policy estimates validated against the closed loop: on the logs of a randomized block
(``RandomRecent``, propensities logged), IPS, SNIPS and DR estimate what another block would
get; the same block run as its own arm of the same site gives the value to cover. Both are
taken on each session's first block, whose contexts (a reader on the article they chose) do not
depend on the block, so the two arms estimate the same quantity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.datasets import PublisherSimulator
from recsys.evaluation.off_policy import estimate
from recsys.simulation.loop import ClosedLoop, Response
from recsys.simulation.policies import MostRecent, RandomRecent, Steps

K = 10
SEEDS = range(15)


def expected_clicks(loop: ClosedLoop, shown: pd.DataFrame) -> np.ndarray:
    """Per block of ``shown`` (slots of one block: reader, article, time, position), its
    expected clicks under the site's click model: sum_s e_s x click probability."""
    truth, response = loop.site.truth, loop.response
    aff = truth.affinity_pairs(shown["reader_index"].to_numpy(), shown["article_index"].to_numpy())
    age = (shown["seconds"].to_numpy() - loop.site.published[shown["article_index"]]) / 86_400
    p = response.examination(K)[shown["position"].to_numpy()] * response.attraction(aff, age)
    return pd.Series(p).groupby(shown["session"].to_numpy()).sum().to_numpy()


def first_blocks(impressions: pd.DataFrame, arm: str) -> pd.DataFrame:
    shown = impressions[(impressions["arm"] == arm) & (impressions["step"] == 0)].copy()
    shown["reader_index"] = shown["reader"].str[1:].astype(int)
    shown["article_index"] = shown["article"].str[1:].astype(int)
    shown["seconds"] = (
        pd.to_datetime(shown["time"]) - pd.Timestamp(0, tz="UTC")
    ).dt.total_seconds()
    return shown


def run(seed: int):
    sim = PublisherSimulator(n_readers=3000, n_articles=400, days=4, initial_articles=150,
                             sessions_per_reader=6.0, seed=seed)  # fmt: skip
    arms = {"random": RandomRecent(pool=30, seed=seed), "target": MostRecent()}
    loop = ClosedLoop(sim, arms, MostRecent(), history_days=1, test_days=3, k=K,
                      response=Response(), seed=seed)  # fmt: skip
    logs = loop.run(progress=lambda line: None)
    logged, target = (
        first_blocks(logs.impressions, "random"),
        first_blocks(logs.impressions, "target"),
    )
    truth = float(expected_clicks(loop, target).mean())  # the target block as it ran
    views = logs.views.sort_values("time", kind="stable")
    landing = views.groupby("session")["article"].first()

    def slates(contexts: pd.DataFrame) -> list[list[str]]:
        steps = Steps(contexts["reader"].str[1:].astype(int).to_numpy(),
                      (pd.to_datetime(contexts["time"]) - pd.Timestamp(0, tz="UTC"))
                      .dt.total_seconds().to_numpy(),
                      [[int(landing[s][1:])] for s in contexts["session"]])  # fmt: skip
        chosen, _ = MostRecent().slates(steps, K, loop.site)
        return [[f"a{i}" for i in row if i >= 0] for row in chosen]

    estimates = estimate(logged, slates, k=K, resamples=300, seed=seed,
                         context_columns=["session"], cluster="reader")  # fmt: skip
    return truth, estimates


def test_off_policy_intervals_cover_the_closed_loop_value_of_the_block():
    covered = {"ips": 0, "snips": 0, "dr": 0}
    for seed in SEEDS:
        truth, estimates = run(seed)
        for name in covered:
            lo, hi = estimates[name]["ci95"]
            covered[name] += lo <= truth <= hi
    for name, n in covered.items():
        assert n >= 0.9 * len(SEEDS), f"{name}: {n} of {len(SEEDS)} intervals cover the truth"
