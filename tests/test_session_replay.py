"""Session replay (sessions, block hits, length estimates) against brute-force loops, the
most-recent block, and NDCG against ground truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from helpers import compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.evaluation.session_replay import block_hits, replay_sessions, session_estimates
from recsys.evaluation.truth import truth_ndcg
from recsys.models.checkpoint import load_model
from recsys.runs.fit import train
from recsys.runs.replay import replay

SIM = [
    "data=publisher_sim",
    "data.n_readers=600",
    "data.n_articles=300",
    "data.initial_articles=40",
    "data.days=20",
    "split=temporal",
    "split.val_ratio=0",
]


def test_sessions_keep_first_views_and_map_ids():
    ev = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b", "b", "c", "a"],
            "item": [1, 2, 1, 3, 9, 2, 3, 2],
            "timestamp": [100, 110, 120, 5000, 105, 106, 50, 10],
        }
    )
    s = replay_sessions(ev, start=100, user_ids=["a", "b"], item_ids=[1, 2, 3], session_gap=1800)
    # a: [1, 2] (the repeat of 1 dropped), then [3] after the gap; b: [9 (unknown), 2];
    # c and a's view at t=10 are before the start
    assert s.offsets.tolist() == [0, 2, 3, 5]
    assert s.items.tolist() == [0, 1, 2, -1, 1]
    assert s.user.tolist() == [0, 0, 1]
    ev["session"] = [7, 7, 7, 7, 8, 9, 1, 7]  # a session column wins over the gap
    s = replay_sessions(ev, 100, ["a", "b"], [1, 2, 3])
    assert s.offsets.tolist() == [0, 3, 4, 5] and s.items.tolist() == [0, 1, 2, -1, 1]


def brute_hits(emb, sessions, published, k, seen, fresh=np.inf):
    out = []
    for s in range(len(sessions.offsets) - 1):
        lo, hi = sessions.offsets[s], sessions.offsets[s + 1]
        for v in range(lo, hi - 1):
            ctx = {int(i) for i in sessions.items[lo : v + 1] if i >= 0}
            if seen is not None and sessions.user[s] >= 0:
                ctx |= set(seen[sessions.user[s]].indices.tolist())
            score = emb[sorted(ctx)].sum(0) @ emb.T if ctx else np.zeros(len(emb))
            age = sessions.times[v] - published
            ok = [j for j in range(len(emb)) if j not in ctx and 0 <= age[j] <= fresh]
            top = sorted(ok, key=lambda j: (-np.float32(score[j]), j))[:k]
            out.append(sessions.items[v + 1] in top)
    return np.array(out)


@pytest.mark.parametrize("with_seen", [False, True])
def test_block_hits_match_a_loop(with_seen):
    rng = np.random.default_rng(0)
    n_items, n_users = 30, 6
    emb = rng.standard_normal((n_items, 4)).astype(np.float32)
    ev = pd.DataFrame(
        {
            "user": rng.integers(0, n_users + 2, 300),  # users 6, 7 unknown
            "item": rng.integers(0, n_items + 3, 300),  # items 30-32 unknown
            "timestamp": np.sort(rng.integers(0, 20_000, 300)),
        }
    )
    s = replay_sessions(ev, 2000, list(range(n_users)), list(range(n_items)), 900)
    assert (np.diff(s.offsets) > 2).sum() > 5
    published = rng.uniform(-1000, 15_000, n_items)
    seen = sp.random(n_users, n_items, 0.2, "csr", random_state=1) if with_seen else None

    def scorer(ctx):
        rows, cols, _ = ctx.distinct()
        profile = torch.zeros(ctx.n, 4).index_add_(0, rows, torch.from_numpy(emb)[cols])
        return profile @ torch.from_numpy(emb).T

    got = block_hits(scorer, s, published, 5, seen, batch_size=7)
    want = brute_hits(emb, s, published, 5, seen)
    assert got.shape == want.shape and got.any() and (got == want).all()
    fresh = block_hits(scorer, s, published, 5, seen, batch_size=7, fresh_seconds=4000)
    assert (fresh == brute_hits(emb, s, published, 5, seen, 4000)).all() and (fresh != got).any()


def test_estimates_match_a_loop_and_rho_one_gives_the_log():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 7, 50)
    hits = rng.random(int((lengths - 1).sum())) < 0.4
    for rho in (0.0, 0.3, 1.0):
        expected, single = session_estimates(lengths, hits, rho)
        at = 0
        for s, n in enumerate(lengths):
            pi = [1.0 if h else rho for h in hits[at : at + n - 1]]
            want = 1 + sum(np.prod(pi[: t + 1]) for t in range(n - 1))
            assert expected[s] == pytest.approx(want)
            assert single[s] == pytest.approx(1 - pi[0] if n > 1 else 1.0)
            at += n - 1
        if rho == 1.0:
            assert np.allclose(expected, lengths) and np.allclose(single, lengths == 1)


def test_truth_ndcg_matches_a_loop():
    rng = np.random.default_rng(2)
    scores = torch.from_numpy(rng.standard_normal((5, 12)).astype(np.float32))
    truth = rng.random((5, 12))
    exclude = sp.random(5, 12, 0.3, "csr", random_state=3)
    got = truth_ndcg(scores, truth, exclude, 4)
    for u in range(5):
        ok = [j for j in range(12) if exclude[u, j] == 0]
        top = sorted(ok, key=lambda j: -scores[u, j].item())[:4]
        ideal = sorted((truth[u, j] for j in ok), reverse=True)[:4]
        dcg = sum(truth[u, j] / np.log2(r + 2) for r, j in enumerate(top))
        assert got[u] == pytest.approx(dcg / sum(g / np.log2(r + 2) for r, g in enumerate(ideal)))


def test_most_recent_model_and_its_replay(tmp_path):
    cfg = compose_config("train", [*SIM, "model=most_recent", "logger=[]"], tmp_path)
    train(cfg)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    model = load_model(ckpt)
    items, _ = model.recommend(torch.tensor([0]), k=5, exclude_seen=False)
    dm = RecsysDataModule.from_config(cfg)
    published = dm.dataset.item_published(dm.item_ids)
    assert items[0].tolist() == np.argsort(-published, kind="stable")[:5].tolist()
    rcfg = compose_config("replay", [f"ckpt_path={ckpt}", "resamples=200"], tmp_path / "r")
    result = replay(rcfg)
    # the checkpoint is the most-recent block itself: every step hits alike
    assert result["steps"] > 100
    for key in ("hit_rate", "articles_per_session", "single_article_sessions"):
        assert result["model"][key]["value"] == result["most_recent"][key]["value"]
        assert result["difference"][key]["value"] == 0
    assert 0 < result["most_recent"]["hit_rate"]["value"] < 1
    saved = json.loads((tmp_path / "r" / "replay.json").read_text())
    assert saved["rho"] == pytest.approx(result["rho"]) and "A1." in saved["assumptions"]


def test_the_models_block_weighs_contexts_by_the_fitted_confidence(tmp_path):
    """With confidence=dwell, a context's training item keeps its training confidence, an
    ended session view gets 1 + alpha w(its dwell), the current view (dwell not known yet)
    1 + alpha * unknown_value; and the replay runs with them."""
    from recsys.evaluation.session_replay import Contexts
    from recsys.runs.replay import context_confidences

    cfg = compose_config(
        "train", [*SIM, "confidence=dwell", "trainer.max_epochs=2", "logger=[]"], tmp_path
    )
    train(cfg)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    model = load_model(ckpt)
    c = model.confidence
    row = model.train_confidence[3]
    u, i = 3, int(row.indices[np.argmax(row.data)])  # a training item read long
    ctx = Contexts(
        n=2,
        users=np.array([u, -1]),
        rows=np.array([0, 0, 1, 1]),
        cols=np.array([i, 7, 5, 9]),
        training=np.array([True, False, False, False]),
        dwell=np.array([np.nan, 95.0, 4.0, np.nan]),
    )
    got = context_confidences(model, ctx)

    def w(d):
        if np.isnan(d):
            return c.unknown_value
        return c.bounce_value if d < c.bounce_seconds else 1 - np.exp(-d / c.scale_seconds)

    want = [model.train_confidence[u, i], 1 + c.alpha * w(95.0), 1 + c.alpha * w(4.0),
            1 + c.alpha * w(np.nan)]  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(set(np.round(got, 4))) == 4
    rcfg = compose_config("replay", [f"ckpt_path={ckpt}", "resamples=100"], tmp_path / "r")
    result = replay(rcfg)
    assert result["steps"] > 100


def test_pool_sizes_match_a_loop():
    rng = np.random.default_rng(5)
    ev = pd.DataFrame({"user": rng.integers(0, 6, 120), "item": rng.integers(0, 20, 120),
                       "timestamp": np.sort(rng.integers(0, 9000, 120))})  # fmt: skip
    s = replay_sessions(ev, 0, list(range(6)), list(range(20)), 900)
    published = rng.uniform(-500, 9000, 20)
    from recsys.evaluation.session_replay import pool_sizes, steps

    _, view = steps(s)
    for fresh in (None, 2000.0):
        want = [
            sum(p <= s.times[v] and (fresh is None or p >= s.times[v] - fresh) for p in published)
            for v in view
        ]
        assert pool_sizes(s, published, fresh).tolist() == want


def test_replay_by_reader_history_and_an_empty_pool(tmp_path, monkeypatch, capsys):
    """New readers (no training item, known id or not) are counted as new and reported apart;
    a replay whose every block would be empty stops with the likely cause."""
    from helpers import one_line, run_main

    cfg = compose_config("train", [*SIM, "model=popularity", "logger=[]"], tmp_path)
    train(cfg)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    model = load_model(ckpt)
    result = replay(compose_config("replay", [f"ckpt_path={ckpt}", "resamples=50"], tmp_path / "r"))
    dm = RecsysDataModule.from_config(cfg)
    events = dm.dataset.events()
    start = float(np.min(dm.split.test.timestamps))
    sessions = replay_sessions(events, start, model.user_ids, model.item_ids, 1800)
    counts = np.diff(model.seen.indptr)
    new = sum(u < 0 or counts[u] == 0 for u in sessions.user)
    assert result["sessions_of_new_readers"] == new > 0
    parts = result["by_reader_history"]
    assert parts["0 (new)"]["sessions"] == new
    assert sum(p["sessions"] for p in parts.values()) == result["sessions"]
    assert sum(p["steps"] for p in parts.values()) == result["steps"]

    monkeypatch.chdir(tmp_path)
    args = [f"ckpt_path={ckpt}", "fresh_days=0.000001", f"hydra.run.dir={tmp_path / 'e'}"]
    line = one_line(*run_main("recsys-replay", args, capsys)[:2])
    assert "every block would be empty" in line and "data.timestamp_unit" in line
    assert not (tmp_path / "e" / "replay.json").exists()


def test_contexts_reach_the_model_in_time_order():
    """Within a step: the reader's training items first, then the session's views as they
    were viewed (an item in both at its latest place); each value stays with its item."""
    from recsys.evaluation.session_replay import Contexts

    # step 0: training items 8, 2; session views 9, 4, 8 (8 also a training item), in order
    # step 1: no training items; views 6, 1
    ctx = Contexts(
        n=2,
        users=np.array([0, -1]),
        rows=np.array([0, 0, 0, 0, 0, 0, 1, 1]),
        cols=np.array([2, 4, 8, 8, 9, 9, 1, 6]),
        training=np.array([True, False, True, False, False, False, False, False]),
        dwell=np.full(8, np.nan),
        position=np.array([-1, 1, -1, 2, 0, 0, 1, 0]),
    )
    values = np.array([20, 40, 81, 80, 90, 91, 10, 60], dtype=np.float32)
    rows, cols, best = ctx.distinct(values)
    assert rows.tolist() == [0, 0, 0, 0, 1, 1]
    assert cols.tolist() == [2, 9, 4, 8, 6, 1]
    assert best.tolist() == [20, 91, 40, 81, 60, 10]
    unordered = Contexts(**{**ctx.__dict__, "position": None})
    assert unordered.distinct()[1].tolist() == [2, 4, 8, 9, 1, 6]  # by column
