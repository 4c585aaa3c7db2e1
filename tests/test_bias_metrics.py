"""Propensity-weighted and popularity-bias metrics against brute-force Python loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_metrics import brute_rank, make_batch

from recsys.evaluation import Evaluator
from recsys.evaluation import bias_metrics as BM


def brute_buckets(pop: np.ndarray, cuts: list[float]) -> list[int]:
    """Walk the items from the most popular (ties: lower index first); an item's bucket is
    the number of cuts at or below the share of interactions before it."""
    order = sorted(range(len(pop)), key=lambda i: (-pop[i], i))
    total, before, out = pop.sum(), 0.0, [0] * len(pop)
    for i in order:
        out[i] = sum(1 for c in cuts if before / total >= c)
        before += pop[i]
    return out


def brute_user(ranked, relevant, k, theta, pop, m, tail, bucket):
    top = ranked[:k]
    t = len(relevant)
    w = {i: 1.0 / theta[i] for i in range(len(theta))}
    sw = sum(w[i] for i in relevant)
    disc = [1 / math.log2(j + 2) for j in range(k)]
    idcg = sum(disc[: min(k, t)])
    hits = [(j, i) for j, i in enumerate(top) if i in relevant]
    out = {
        "dcg": sum(disc[j] for j, _ in hits) / t,
        "ips_recall": sum(w[i] for _, i in hits) / t,
        "ips_dcg": sum(w[i] * disc[j] for j, i in hits) / t,
        "ips_ndcg": sum(w[i] * disc[j] for j, i in hits) / idcg,
        "snips_recall": sum(w[i] for _, i in hits) / sw,
        "snips_dcg": sum(w[i] * disc[j] for j, i in hits) / sw,
        "snips_ndcg": sum(w[i] * t / sw * disc[j] for j, i in hits) / idcg,
        "arp": np.mean([pop[i] for i in top]) if top else 0.0,
        "aplt": np.mean([tail[i] for i in top]) if top else 0.0,
        "novelty": np.mean([-math.log2(max(pop[i], 1) / m) for i in top]) if top else 0.0,
    }
    for b, name in enumerate(BM.BUCKETS):
        rel_b = [i for i in relevant if bucket[i] == b]
        got = sum(1 for _, i in hits if bucket[i] == b)
        out[name] = got / len(rel_b) if rel_b else float("nan")
    return out


def brute_gini(exposure):
    # mean absolute difference over all pairs / (2 * mean)
    e = np.asarray(exposure, dtype=float)
    n = len(e)
    mad = sum(abs(a - b) for a in e for b in e) / (n * n)
    return mad / (2 * e.mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bias_metrics_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, m = 9, 16, 50
    scores, excl, truth, batch = make_batch(n_users, n_items, rng, max_excl=12)
    pop = rng.integers(0, 12, n_items).astype(float)
    pop[3] = 0  # an item nobody trained on
    theta = rng.uniform(0.05, 1.0, n_items)
    ev = Evaluator(ks=[3, 5], metrics=list(BM.ALL))
    ev.set_item_statistics(pop, m, theta)
    state = ev.new_state(n_items)
    for rows in (range(0, 4), range(4, 9)):  # two batches, re-indexed
        rows = list(rows)
        sub = {"users": torch.tensor(rows)}
        for part in ("exclude", "truth"):
            r, c = batch[f"{part}_rows"], batch[f"{part}_cols"]
            keep = torch.isin(r, torch.tensor(rows))
            sub[f"{part}_rows"] = r[keep] - rows[0]
            sub[f"{part}_cols"] = c[keep]
        ev.update(state, torch.from_numpy(scores[rows]), sub)
    per_user = state.per_user()
    results = ev.compute(state, "test")

    tail = [b > 0 for b in brute_buckets(pop, [0.2])]
    bucket = brute_buckets(pop, [0.2, 0.8])
    for k in (3, 5):
        want_users = []
        exposure = np.zeros(n_items)
        for u in range(n_users):
            ranked = brute_rank(scores[u], excl[u])
            exposure[ranked[:k]] += 1
            want = brute_user(ranked, truth[u], k, theta, pop, m, tail, bucket)
            want_users.append(want)
            for name, value in want.items():
                got = per_user[f"{name}@{k}"][u]
                if math.isnan(value):
                    assert math.isnan(got), (name, k, u)
                else:
                    assert got == pytest.approx(value, rel=1e-5, abs=1e-6), (name, k, u)
        for name in BM.WEIGHTED + BM.LIST + BM.BUCKETS:
            vals = [w[name] for w in want_users if not math.isnan(w[name])]
            assert results[f"test/{name}@{k}"] == pytest.approx(np.mean(vals), rel=1e-5)
        assert results[f"test/gini@{k}"] == pytest.approx(brute_gini(exposure), rel=1e-9)


def test_with_unit_propensities_ips_metrics_are_the_plain_ones():
    rng = np.random.default_rng(5)
    scores, _, _, batch = make_batch(6, 20, rng)
    ev = Evaluator(
        ks=[5], metrics=["recall", "ndcg", "ips_recall", "snips_recall", "ips_ndcg", "snips_ndcg"]
    )
    ev.set_item_statistics(np.ones(20), 6, None)
    state = ev.new_state(20)
    ev.update(state, torch.from_numpy(scores), batch)
    r = ev.compute(state, "t")
    for base in ("recall", "ndcg"):
        assert r[f"t/ips_{base}@5"] == pytest.approx(r[f"t/{base}@5"], rel=1e-6)
        assert r[f"t/snips_{base}@5"] == pytest.approx(r[f"t/{base}@5"], rel=1e-6)


def test_buckets_split_interactions_by_share():
    pop = np.array([50.0, 10, 10, 10, 10, 5, 5, 0])  # total 100
    np.testing.assert_array_equal(
        BM.popularity_bucket(pop, (0.2, 0.8)), brute_buckets(pop, [0.2, 0.8])
    )
    assert BM.popularity_bucket(pop, (0.2, 0.8)).tolist() == [0, 1, 1, 1, 2, 2, 2, 2]


def test_gini_extremes():
    assert BM.gini(np.array([3, 3, 3, 3])) == 0.0
    assert BM.gini(np.array([0, 0, 0, 8])) == pytest.approx(0.75)  # (n - 1) / n
    assert BM.gini(np.zeros(4)) == 0.0


def test_bias_metrics_without_statistics_fail_clearly():
    rng = np.random.default_rng(0)
    scores, _, _, batch = make_batch(3, 10, rng)
    ev = Evaluator(ks=[5], metrics=["arp"])
    with pytest.raises(RuntimeError, match="set_item_statistics"):
        ev.update(ev.new_state(10), torch.from_numpy(scores), batch)
