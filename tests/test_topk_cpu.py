"""The CPU top-k that leaves excluded items out while it reads the scores, against writing
-inf into a copy and ranking it with ``ranking.topk``; evaluation through it and through the
torch path gives the same metrics; the scratch buffer of an evaluation step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.evaluation import Evaluator
from recsys.evaluation.ranking import topk
from recsys.evaluation.topk_cpu import topk_excluding
from recsys.models.als import ALS


def random_case(seed: int, b: int = 40, n: int = 60):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 8, size=(b, n)).astype(np.float32)  # many ties
    scores[rng.random((b, n)) < 0.05] = -np.inf  # the model's own -inf (e.g. masked items)
    scores[3] = -np.inf  # a row with nothing to rank
    scores[4, 1:] = -np.inf  # a row with one item
    scores[5][scores[5] == 0] = -0.0  # equals +0.0
    excluded = rng.random((b, n)) < 0.3
    rows, cols = np.nonzero(excluded)
    return torch.from_numpy(scores), torch.from_numpy(rows), torch.from_numpy(cols)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 5, 20, 60, 80])
def test_equals_ranking_a_masked_copy(seed, k):
    scores, rows, cols = random_case(seed)
    items, values, valid = topk_excluding(scores, rows, cols, k)
    masked = scores.clone()
    masked[rows, cols] = float("-inf")
    want_items, want_valid = topk(masked, k)
    assert torch.equal(valid, want_valid)
    assert torch.equal(items[valid], want_items[want_valid])
    assert torch.equal(values[valid], torch.gather(masked, 1, want_items)[want_valid])
    assert (items[~valid] == -1).all() and torch.isneginf(values[~valid]).all()
    shuffled = torch.from_numpy(np.random.default_rng(seed).permutation(len(rows)))
    again = topk_excluding(scores, rows[shuffled], cols[shuffled], k)  # entries in any order
    assert all(torch.equal(a, b) for a, b in zip(again, (items, values, valid)))


def test_nan_is_an_error_unless_excluded():
    scores, rows, cols = random_case(0)
    scores[7, 10] = float("nan")
    keep = ~((rows == 7) & (cols == 10))
    with pytest.raises(FloatingPointError, match="NaN"):
        topk_excluding(scores, rows[keep], cols[keep], 5)
    extra_rows = torch.cat([rows, torch.tensor([7])])
    extra_cols = torch.cat([cols, torch.tensor([10])])
    topk_excluding(scores, extra_rows, extra_cols, 5)  # excluded: no error


def _batch(seed: int, b: int = 30, n: int = 50) -> tuple[torch.Tensor, dict]:
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.standard_normal((b, n)).astype(np.float32))
    ex = np.nonzero(rng.random((b, n)) < 0.2)
    truth = np.nonzero(rng.random((b, n)) < 0.1)
    batch = {
        "users": torch.arange(b),
        "exclude_rows": torch.from_numpy(ex[0]),
        "exclude_cols": torch.from_numpy(ex[1]),
        "truth_rows": torch.from_numpy(truth[0]),
        "truth_cols": torch.from_numpy(truth[1]),
    }
    return scores, batch


def test_evaluation_on_the_cpu_path_equals_the_torch_path():
    """float32 CPU scores take the one-pass kernel; the same scores in float64 take the
    torch path (copy, -inf, topk, dense truth): every metric agrees."""
    ev = Evaluator(ks=(1, 5, 10), history_buckets=None)
    fast, slow = ev.new_state(50), ev.new_state(50)
    for seed in range(3):
        scores, batch = _batch(seed)
        ev.update(fast, scores, batch)
        ev.update(slow, scores.double(), batch)
    a, b = ev.compute(fast, "test"), ev.compute(slow, "test")
    assert a.keys() == b.keys() and a == pytest.approx(b, rel=1e-12)
    assert a["test/ndcg@10"] > 0


def test_the_scratch_buffer_is_only_lent_inside_an_evaluation_step():
    torch.manual_seed(0)
    model = ALS(20, 30, factors=4)
    users = torch.arange(5)
    assert model.scratch_scores(5, model.user_factors) is None  # outside a step
    model._scratch_open = True
    first = model.score(users)
    second = model.score(users)  # a second score in the same step gets its own tensor
    assert first.data_ptr() != second.data_ptr() and torch.equal(first, second)
    assert model._scratch is not None and first.data_ptr() == model._scratch.data_ptr()
    assert torch.equal(first, model.user_factors[users] @ model.item_factors.T)
