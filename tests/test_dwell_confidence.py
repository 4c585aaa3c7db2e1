"""Dwell read against the article: length-normalized dwell (``DwellPerLength``) and the dwell's
quantile within its article (``DwellQuantile``), each checked against a loop over a small
hand-made log; fitted on the training part only; saved and loaded with a model; a new user's
history weighted as a training user's."""

from __future__ import annotations

import io
import math

import hydra
import numpy as np
import pytest
import torch
from helpers import compose_config

from recsys.data.confidence import Confidence, DwellPerLength, DwellQuantile
from recsys.data.interactions import Interactions
from recsys.errors import RecsysError

NAN = float("nan")
LENGTHS = {0: 800.0, 1: 1600.0, 2: NAN, 3: 120.0, 4: 2000.0}  # article -> words (2: unknown)
# (user, article, dwell seconds (total), views): bounces, unknown dwell, repeats, ties
PAIRS = [
    (0, 0, 110.0, 1), (0, 1, 300.0, 1), (0, 2, 50.0, 1), (0, 3, 25.0, 1),
    (1, 0, 130.0, 2), (1, 1, 4.0, 1), (1, 3, NAN, 1), (1, 4, 600.0, 1),
    (2, 0, 7.0, 1), (2, 1, 900.0, 3), (2, 3, 16.0, 1), (2, 4, 310.0, 1),
    (3, 0, 90.0, 1), (3, 1, 300.0, 1), (3, 2, 12.0, 1), (3, 4, NAN, 2),
    (4, 0, 160.0, 1), (4, 1, 60.0, 1), (4, 3, 30.0, 1), (4, 4, 1000.0, 1),
    (5, 0, 110.0, 1), (5, 1, 300.0, 2), (5, 3, 10.0, 1), (5, 4, 500.0, 1),
]  # fmt: skip
TEST_USERS = {5}  # user 5's pairs are the held-out part


def log(pairs=PAIRS, lengths=LENGTHS) -> Interactions:
    users, items, dwell, views = (np.array(c, dtype=float) for c in zip(*pairs))
    return Interactions.from_arrays(
        users.astype(int),
        items.astype(int),
        views,
        user_ids=np.arange(6),
        item_ids=np.arange(5),
        features={
            "dwell": dwell,
            "count": views,
            "item_length": np.array([lengths[int(i)] for i in items]),
        },
    )


def parts(data: Interactions) -> tuple[Interactions, Interactions]:
    test = np.isin(data.rows(), list(TEST_USERS))
    return data.subset(~test), data.subset(test)


def entries(part: Interactions):
    """(user, article, dwell, views, item_length) of each stored entry, in storage order."""
    m = part.matrix
    for u in range(part.n_users):
        for j in range(m.indptr[u], m.indptr[u + 1]):
            f = part.features
            yield u, int(m.indices[j]), f["dwell"][j], f["count"][j], f["item_length"][j]


def per_length_by_loop(c: DwellPerLength, train: Interactions, part: Interactions) -> list:
    train_length = {i: length for _, i, _, _, length in entries(train) if length > 0}
    out = []
    for _, i, d, n, length in entries(part):
        length = train_length.get(i, length)  # the training article's length first
        if math.isnan(d):
            out.append(c.unknown_value)
        elif d < c.bounce_seconds:
            out.append(c.bounce_value)
        elif math.isnan(length) or length <= 0:
            out.append(c.unknown_value)
        else:
            expected = length / c.words_per_second
            out.append(min(d / n / expected, c.cap))
    return out


def quantile_by_loop(c: DwellQuantile, train: Interactions, part: Interactions) -> list:
    known = [(i, d) for _, i, d, _, _ in entries(train) if not math.isnan(d)]
    everyone = [d for _, d in known]
    out = []
    for _, i, d, _, _ in entries(part):
        if math.isnan(d):
            out.append(c.unknown_value)
            continue
        if d < c.bounce_seconds:
            out.append(c.bounce_value)
            continue
        own = [x for j, x in known if j == i]
        pool = own if len(own) >= c.min_count else everyone
        below = sum(1 for x in pool if x < d)
        ties = sum(1 for x in pool if x == d)
        out.append((below + ties / 2) / len(pool))
    return out


def test_length_normalized_dwell_matches_a_loop():
    train, test = parts(log())
    for c in (DwellPerLength(), DwellPerLength(alpha=3, words_per_second=2.5, cap=1.5,
                                               bounce_seconds=8, bounce_value=0.2,
                                               unknown_value=0.3)):  # fmt: skip
        c.fit(train)
        for part in (train, test):
            want = per_length_by_loop(c, train, part)
            np.testing.assert_allclose(c.g(part), want, rtol=1e-12)
            np.testing.assert_allclose(c.values(part), 1 + c.alpha * np.array(want), rtol=1e-6)
    # the cases are there: capped, bounces, unknown dwell, unknown length, repeat views
    g = DwellPerLength().fit(train).g(train)
    assert {0.05, 0.5, 1.0} <= set(np.round(g, 6)) and len(set(np.round(g, 6))) > 9


def test_an_article_without_training_length_takes_the_parts():
    train, _ = parts(log())
    c = DwellPerLength().fit(train)
    assert np.isnan(c._item_length[2])  # article 2 has no known length in training
    lengths = {**LENGTHS, 2: 600.0}
    new = log([p for p in PAIRS if p[0] == 0], lengths)
    # article 2 read 50 s of 150 s expected; the others by their training lengths
    assert c.g(new)[2] == pytest.approx(50 / 150)
    np.testing.assert_allclose(c.g(new), per_length_by_loop(c, train, new))


def test_per_article_quantile_matches_a_loop():
    train, test = parts(log())
    for c in (
        DwellQuantile(min_count=4),
        DwellQuantile(min_count=1, bounce_seconds=0),
        DwellQuantile(alpha=2, min_count=5, bounce_value=0.1, unknown_value=0.7),
    ):
        c.fit(train)
        for part in (train, test):
            want = quantile_by_loop(c, train, part)
            np.testing.assert_allclose(c.g(part), want, rtol=1e-12)
            np.testing.assert_allclose(c.values(part), 1 + c.alpha * np.array(want), rtol=1e-6)
    # min_count=4: articles 0, 1 (5 training dwells each) have their own distribution,
    # 2, 3, 4 (2, 3, 3 known) the global one; ties get the mid-rank
    c = DwellQuantile(min_count=4).fit(train)
    assert np.diff(c._offsets).tolist() == [5, 5, 0, 0, 0]
    assert c.g(train)[1] == pytest.approx((2 + 2 / 2) / 5)  # 300 s among 4, 60, 300, 300, 900


def test_fit_uses_the_training_part_only():
    """Changing the held-out part's dwells, views and article lengths changes nothing fitted
    (fitting on the whole log would)."""
    data = log()
    train, test = parts(data)
    held_out = np.isin(data.rows(), list(TEST_USERS))
    features = {k: v.copy() for k, v in data.features.items()}
    for name, scale in (("dwell", 7.0), ("count", 2.0), ("item_length", 3.0)):
        features[name][held_out] *= scale
    changed = Interactions(data.matrix, data.user_ids, data.item_ids, None, features)
    train2, test2 = parts(changed)
    assert not np.allclose(test.features["dwell"], test2.features["dwell"])
    for make in (DwellPerLength, lambda: DwellQuantile(min_count=3)):
        a, b = make().fit(train), make().fit(train2)
        for name in type(a).fitted:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(a.g(train), b.g(train))
        whole = make().fit(changed)
        assert any(
            not np.array_equal(getattr(whole, n), getattr(a, n), equal_nan=True)
            for n in type(a).fitted
        )


@pytest.mark.parametrize("make", [DwellPerLength, lambda: DwellQuantile(min_count=3)],
                         ids=["per_length", "quantile"])  # fmt: skip
def test_state_round_trip(make):
    train, test = parts(log())
    c = make().fit(train)
    buffer = io.BytesIO()
    torch.save(c.state(), buffer)
    buffer.seek(0)
    back = Confidence.from_state(torch.load(buffer, weights_only=True))
    assert type(back) is type(c) and repr(back) == repr(c)
    for part in (train, test):
        np.testing.assert_array_equal(back.values(part), c.values(part))


@pytest.mark.parametrize("make", [DwellPerLength, lambda: DwellQuantile(min_count=3)],
                         ids=["per_length", "quantile"])  # fmt: skip
def test_new_users_histories_are_weighted_as_training_users(make):
    """Fold-in: entries of two new users with training users' items and features get those
    users' training confidences (in entry order, whatever the order given)."""
    train, _ = parts(log())
    c = make().fit(train)
    trained = c.matrix(train)
    m = train.matrix
    users = [1, 2]
    rows, cols, strengths, dwell, count = [], [], [], [], []
    for r, u in enumerate(users):
        for j in range(m.indptr[u], m.indptr[u + 1]):
            rows.append(r)
            cols.append(m.indices[j])
            strengths.append(m.data[j])
            dwell.append(train.features["dwell"][j])
            count.append(train.features["count"][j])
    order = np.random.default_rng(0).permutation(len(rows))
    take = lambda v: np.asarray(v)[order]  # noqa: E731
    features = {"dwell": take(dwell), "count": take(count)}  # no item_length needed
    got = c.values_of_histories(
        train.item_ids, take(rows), take(cols), take(strengths), features, len(users)
    )
    want = np.asarray(trained[np.array(users)[take(rows)], take(cols)]).ravel()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(set(np.round(got, 5))) > 3


def test_missing_features_are_one_clear_error():
    data = log()
    no_length = Interactions(data.matrix, data.user_ids, data.item_ids, None,
                             {"dwell": data.features["dwell"]})  # fmt: skip
    with pytest.raises(RecsysError, match="needs the per-pair feature 'item_length'"):
        DwellPerLength().fit(no_length)
    bare = Interactions(data.matrix, data.user_ids, data.item_ids)
    with pytest.raises(RecsysError, match="needs the per-pair feature 'dwell'"):
        DwellQuantile().fit(bare)
    with pytest.raises(RuntimeError, match="fit"):
        DwellQuantile().g(data)


@pytest.mark.parametrize("name, cls", [("dwell_per_length", DwellPerLength),
                                       ("dwell_quantile", DwellQuantile)])  # fmt: skip
def test_configs_take_the_logs_bounce_threshold(name, cls, tmp_path):
    cfg = compose_config("train", ["data=publisher_sim", f"confidence={name}",
                                   "data.rules.bounce_seconds=25"], tmp_path)  # fmt: skip
    c = hydra.utils.instantiate(cfg.confidence)
    assert type(c) is cls and c.bounce_seconds == 25.0
    plain = compose_config("train", [f"confidence={name}"], tmp_path / "plain")
    assert hydra.utils.instantiate(plain.confidence).bounce_seconds == 10.0
