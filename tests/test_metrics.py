"""Ranking and metrics against brute-force Python implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys.evaluation import Evaluator, topk
from recsys.evaluation import metrics as M


def brute_rank(scores: np.ndarray, excluded: set[int]) -> list[int]:
    """All non-excluded items by score descending, ties by item index ascending."""
    items = [i for i in range(len(scores)) if i not in excluded]
    return sorted(items, key=lambda i: (-float(scores[i]), i))


def brute_metrics(ranked: list[int], relevant: set[int], k: int) -> dict[str, float]:
    top = ranked[:k]
    h = [1.0 if i in relevant else 0.0 for i in top]
    t = len(relevant)
    hits = sum(h)
    dcg = sum(hj / math.log2(j + 2) for j, hj in enumerate(h))
    idcg = sum(1 / math.log2(j + 2) for j in range(min(k, t)))
    ap, running = 0.0, 0.0
    for j, hj in enumerate(h):
        running += hj
        ap += hj * running / (j + 1)
    first = next((j for j, hj in enumerate(h) if hj), None)
    return {
        "recall": hits / t,
        "recall_norm": hits / min(k, t),
        "precision": hits / k,
        "ndcg": dcg / idcg,
        "map": ap / min(k, t),
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "hit_rate": float(hits > 0),
    }


def make_batch(n_users, n_items, rng, max_truth=6, max_excl=8, ties=True):
    """Random scores (with many ties when asked), exclusions and disjoint truth."""
    if ties:
        scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)
    else:
        scores = rng.standard_normal((n_users, n_items)).astype(np.float32)
    excl, truth = [], []
    for _ in range(n_users):
        perm = rng.permutation(n_items)
        e = set(perm[: rng.integers(0, max_excl + 1)].tolist())
        t = set(perm[len(e) : len(e) + rng.integers(1, max_truth + 1)].tolist())
        excl.append(e)
        truth.append(t)

    def pos(sets):
        rows = [u for u, s in enumerate(sets) for _ in s]
        cols = [i for s in sets for i in sorted(s)]
        return torch.tensor(rows, dtype=torch.int64), torch.tensor(cols, dtype=torch.int64)

    er, ec = pos(excl)
    tr, tc = pos(truth)
    batch = {
        "users": torch.arange(n_users),
        "exclude_rows": er,
        "exclude_cols": ec,
        "truth_rows": tr,
        "truth_cols": tc,
    }
    return scores, excl, truth, batch


@pytest.mark.parametrize("ties", [True, False])
def test_topk_matches_brute_force_order(ties):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, (20, 30)) if ties else rng.standard_normal((20, 30))
    scores = scores.astype(np.float32)
    scores[0, :5] = -0.0  # -0.0 and 0.0 are equal scores
    scores[0, 5:10] = 0.0
    items, valid = topk(torch.from_numpy(scores), 12)
    assert valid.all()
    for u in range(20):
        assert items[u].tolist() == brute_rank(scores[u], set())[:12]


def test_topk_ties_inside_and_at_the_border_match_brute_force():
    """Rows whose ties lie within the top k (reordered by index) and rows tied at the k-th
    place (re-ranked over all items), mixed in one batch."""
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((40, 50)).astype(np.float32)
    scores[::3, 10:20] = 5.0  # ten tied best items, k = 12: ties inside the top k
    scores[1::3, 5:45] = 3.0  # forty tied best items: ties at the border
    scores[2::6, :] = float("-inf")
    scores[2::6, 7] = 1.0  # one valid item only
    items, valid = topk(torch.from_numpy(scores), 12)
    for u in range(40):
        want = brute_rank(scores[u], set())[:12]
        n_valid = int(np.isfinite(scores[u]).sum())
        assert items[u, :n_valid].tolist() == want[:n_valid]
        assert valid[u].tolist() == [True] * min(n_valid, 12) + [False] * (12 - min(n_valid, 12))


def test_topk_marks_excluded_slots_invalid():
    scores = torch.tensor([[1.0, float("-inf"), 3.0, float("-inf")]])
    items, valid = topk(scores, 4)
    assert items[0, :2].tolist() == [2, 0]
    assert valid[0].tolist() == [True, True, False, False]


def test_topk_rejects_nan():
    with pytest.raises(FloatingPointError):
        topk(torch.tensor([[0.0, float("nan")]]), 1)


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_evaluator_matches_brute_force(ties, k):
    rng = np.random.default_rng(k + 10 * ties)
    n_users, n_items = 40, 25
    scores, excl, truth, batch = make_batch(n_users, n_items, rng, ties=ties)
    ev = Evaluator(ks=[k, 5])
    state = ev.new_state(n_items)
    # two batches, to check accumulation across batches
    half = n_users // 2
    for lo, hi in ((0, half), (half, n_users)):
        sel = (batch["exclude_rows"] >= lo) & (batch["exclude_rows"] < hi)
        tsel = (batch["truth_rows"] >= lo) & (batch["truth_rows"] < hi)
        sub = {
            "users": batch["users"][lo:hi],
            "exclude_rows": batch["exclude_rows"][sel] - lo,
            "exclude_cols": batch["exclude_cols"][sel],
            "truth_rows": batch["truth_rows"][tsel] - lo,
            "truth_cols": batch["truth_cols"][tsel],
        }
        ev.update(state, torch.from_numpy(scores[lo:hi]), sub)
    result = ev.compute(state, "test")
    per_user = state.per_user()
    expected = [brute_metrics(brute_rank(scores[u], excl[u]), truth[u], k) for u in range(n_users)]
    for name in M.PER_USER:
        want = np.array([e[name] for e in expected])
        np.testing.assert_allclose(per_user[f"{name}@{k}"], want, rtol=1e-6, atol=1e-7)
        assert result[f"test/{name}@{k}"] == pytest.approx(want.mean(), rel=1e-6)
    covered = {i for u in range(n_users) for i in brute_rank(scores[u], excl[u])[:k]}
    assert result[f"test/coverage@{k}"] == pytest.approx(len(covered) / n_items)
    assert per_user["n_test"].tolist() == [len(t) for t in truth]


def test_users_with_fewer_than_k_candidates():
    # user 0 can be recommended only items 0 and 1; its one relevant item ranks second
    scores = torch.tensor([[0.5, 0.9, 0.1, 0.2]])
    batch = {
        "users": torch.tensor([0]),
        "exclude_rows": torch.tensor([0, 0]),
        "exclude_cols": torch.tensor([2, 3]),
        "truth_rows": torch.tensor([0]),
        "truth_cols": torch.tensor([0]),
    }
    ev = Evaluator(ks=[3], metrics=["recall", "precision", "ndcg", "mrr", "coverage"])
    state = ev.new_state(4)
    ev.update(state, scores, batch)
    r = ev.compute(state, "val")
    assert r["val/recall@3"] == 1.0
    assert r["val/precision@3"] == pytest.approx(1 / 3)
    assert r["val/ndcg@3"] == pytest.approx(1 / math.log2(3))
    assert r["val/mrr@3"] == 0.5
    assert r["val/coverage@3"] == 0.5  # excluded items never count as recommended


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="unknown metric"):
        Evaluator(metrics=["recall", "auc"])


def test_candidates_restrict_the_ranking():
    rng = np.random.default_rng(7)
    scores, excl, truth, batch = make_batch(6, 15, rng)
    cands = []
    for u in range(6):
        c = set(rng.choice(15, size=8, replace=False).tolist()) | truth[u]
        cands.append(c)
    batch["candidate_rows"] = torch.tensor([u for u, c in enumerate(cands) for _ in c])
    batch["candidate_cols"] = torch.tensor([i for c in cands for i in sorted(c)])
    ev = Evaluator(ks=[3], metrics=["ndcg", "recall"])
    state = ev.new_state(15)
    ev.update(state, torch.from_numpy(scores), batch)
    per_user = state.per_user()
    for u in range(6):
        outside = set(range(15)) - cands[u]
        want = brute_metrics(brute_rank(scores[u], excl[u] | outside), truth[u], 3)
        assert per_user["ndcg@3"][u] == pytest.approx(want["ndcg"], rel=1e-6)
        assert per_user["recall@3"][u] == pytest.approx(want["recall"], rel=1e-6)


def test_segments_by_history_and_recall_on_new_items_match_brute_force():
    rng = np.random.default_rng(7)
    n_users, n_items, k = 60, 30, 5
    scores, excl, truth, batch = make_batch(n_users, n_items, rng, ties=False)
    history = rng.integers(0, 14, n_users)
    history[:4] = 0  # every segment has users
    popularity = rng.integers(0, 3, n_items)  # about a third of the items are new
    ev = Evaluator(ks=[k], metrics=["recall", "ndcg", "recall_new"], history_buckets=[10, 1, 3])
    ev.set_item_statistics(popularity, n_users)
    ev.set_user_history(history)
    state = ev.new_state(n_items)
    ev.update(state, torch.from_numpy(scores), batch)
    result = ev.compute(state, "test")
    assert ev.segment_labels() == ["0", "1-2", "3-9", "10+"]
    new_recall = []
    for u in range(n_users):
        top = brute_rank(scores[u], excl[u])[:k]
        new = {i for i in truth[u] if popularity[i] == 0}
        new_recall.append(len(new & set(top)) / len(new) if new else np.nan)
    new_recall = np.array(new_recall)
    assert result[f"test/recall_new@{k}"] == pytest.approx(np.nanmean(new_recall))
    recall = np.array([brute_metrics(brute_rank(scores[u], excl[u]), truth[u], k)["recall"]
                       for u in range(n_users)])  # fmt: skip
    for label, lo, hi in (("0", 0, 1), ("1-2", 1, 3), ("3-9", 3, 10), ("10+", 10, 99)):
        members = (history >= lo) & (history < hi)
        assert result[f"test/users/hist_{label}"] == members.sum() > 0
        assert result[f"test/recall@{k}/hist_{label}"] == pytest.approx(recall[members].mean())
        want = np.nanmean(new_recall[members]) if (~np.isnan(new_recall[members])).any() else None
        if want is not None:
            assert result[f"test/recall_new@{k}/hist_{label}"] == pytest.approx(want)
    with pytest.raises(ValueError, match="history_buckets"):
        Evaluator(history_buckets=[0, 3])
