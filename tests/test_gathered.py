"""Scores against gathered rows without the gather (``recsys.models.gathered``), and the
per-pair losses built on them, against the plain gather, brute-force loops and dense sums."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from omegaconf import OmegaConf
from test_contrastive import brute_ccl

from recsys.models.bpr import bpr_loss, bpr_loss_gathered, pair_loss
from recsys.models.contrastive import ccl_loss, ccl_loss_gathered
from recsys.models.gathered import gathered_scores
from recsys.models.sampling import TripleSampler


def tensors(*shapes, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=dtype, requires_grad=True) for s in shapes]


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_scores_and_gradients_equal_a_loop_over_the_entries(index_dtype):
    B, n, N, k = 5, 7, 9, 3
    u, table = tensors((B, k), (N, k))
    idx = torch.randint(N, (B, n), generator=torch.Generator().manual_seed(1)).to(index_dtype)
    idx[0, :3] = 4  # one row gathered several times by one pair and by others
    idx[1, 0] = 4
    w_dots, w_squares = torch.rand(B, n, dtype=torch.float64), torch.rand(B, n, dtype=torch.float64)
    dots, squares = gathered_scores(u, table, idx)
    got = torch.autograd.grad((dots * w_dots).sum() + (squares * w_squares).sum(), (u, table))
    # the loop: every (b, t) its own dot product and squared norm
    want_d = torch.stack(
        [torch.stack([u[b] @ table[idx[b, t]] for t in range(n)]) for b in range(B)]
    )
    want_s = torch.stack(
        [torch.stack([table[idx[b, t]] @ table[idx[b, t]] for t in range(n)]) for b in range(B)]
    )
    torch.testing.assert_close(dots, want_d, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(squares, want_s, rtol=1e-13, atol=1e-13)
    want = torch.autograd.grad((want_d * w_dots).sum() + (want_s * w_squares).sum(), (u, table))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_one_output_alone_gives_the_gradient_of_that_output_only():
    u, table = tensors((4, 3), (6, 3))
    idx = torch.randint(6, (4, 5), generator=torch.Generator().manual_seed(2))
    rows = table[idx]
    dots, squares = gathered_scores(u, table, idx)
    for ours, plain in ((dots, torch.einsum("bk,bnk->bn", u, rows)), (squares, rows.pow(2).sum(2))):
        got = torch.autograd.grad(ours.sum(), (u, table), allow_unused=True, retain_graph=True)
        want = torch.autograd.grad(plain.sum(), (u, table), allow_unused=True, retain_graph=True)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, torch.zeros_like(u) if b is None else b)


def test_float32_matches_the_plain_gather_within_rounding():
    u, table = tensors((64, 32), (500, 32), dtype=torch.float32)
    idx = torch.randint(500, (64, 100), generator=torch.Generator().manual_seed(3))
    dots, squares = gathered_scores(u, table, idx)
    rows = table[idx]
    torch.testing.assert_close(dots, torch.einsum("bk,bnk->bn", u, rows), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(squares, rows.pow(2).sum(2), rtol=1e-5, atol=1e-5)


def test_indices_outside_the_table_are_an_error_not_a_read_outside_memory():
    u, table = tensors((2, 3), (4, 3))
    for bad in (4, -1):
        with pytest.raises(IndexError, match=r"\[0, 4\)"):
            gathered_scores(u, table, torch.tensor([[0, bad], [1, 2]]))


def test_bpr_loss_gathered_is_bpr_loss_of_the_gather():
    B, n, N, k = 6, 5, 10, 4
    u, i, table, bias = tensors((B, k), (B, k), (N, k), (N,))
    neg = torch.randint(N, (B, n), generator=torch.Generator().manual_seed(4))
    pos = torch.arange(B)
    weights = torch.rand(B, dtype=torch.float64) + 0.5
    ours = bpr_loss_gathered(u, i, table, neg, bias[pos], bias[neg], 0.05, weights)
    plain = bpr_loss(u, i, table[neg], bias[pos], bias[neg], 0.05, weights)
    assert ours.item() == pytest.approx(plain.item(), rel=1e-12)
    inputs = [u, i, table, bias]
    for a, b in zip(torch.autograd.grad(ours, inputs), torch.autograd.grad(plain, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reg", [0.0, 0.03])
def test_ccl_loss_gathered_is_the_brute_force_ccl_and_ccl_loss_of_the_gather(reg):
    B, n, N, k = 6, 5, 10, 4
    u, i, table = tensors((B, k), (B, k), (N, k))
    neg = torch.randint(N, (B, n), generator=torch.Generator().manual_seed(5))
    weights = torch.rand(B, dtype=torch.float64) + 0.5
    ours = ccl_loss_gathered(u, i, table, neg, 0.1, 3.0, reg, weights)
    brute = brute_ccl(u, i, [list(table[neg[b]]) for b in range(B)], 0.1, 3.0, reg, weights)
    plain = ccl_loss(u, i, table[neg], 0.1, 3.0, None, reg, weights)
    assert ours.item() == pytest.approx(brute.item(), rel=1e-12)
    assert ours.item() == pytest.approx(plain.item(), rel=1e-12)
    inputs = [u, i, table]
    for a, b in zip(torch.autograd.grad(ours, inputs), torch.autograd.grad(brute, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_ccl_gradients_stay_finite_for_an_all_zero_negative():
    u, i, table = tensors((3, 4), (3, 4), (5, 4))
    with torch.no_grad():
        table[2] = 0
    neg = torch.tensor([[2, 1], [0, 2], [3, 4]])
    grads = torch.autograd.grad(ccl_loss_gathered(u, i, table, neg, 0.1, 3.0, 0.01), [u, table])
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("loss", ["bpr", "ccl"])
def test_pair_loss_takes_the_gathered_path_for_many_per_pair_negatives(loss, monkeypatch):
    """Several negatives per pair go through ``gathered_scores`` (counted), with the value
    of the loss of the plain gather; one negative per pair keeps the plain gather."""
    import recsys.models.gathered as gathered

    calls = []
    real = gathered._GatheredScores.apply
    monkeypatch.setattr(gathered._GatheredScores, "apply", lambda *a: calls.append(1) or real(*a))
    h = OmegaConf.create({"loss": loss, "margin": 0.2, "negative_weight": 2.0})
    u, i, table = tensors((6, 4), (6, 4), (10, 4))
    neg = torch.randint(10, (6, 3), generator=torch.Generator().manual_seed(6))
    ours = pair_loss(h, u, i, table, neg, None, regularization=0.01)
    plain_fn = bpr_loss if loss == "bpr" else lambda *a, **kw: ccl_loss(*a[:3], 0.2, 2.0, **kw)
    plain = plain_fn(u, i, table[neg], regularization=0.01)
    assert calls and ours.item() == pytest.approx(plain.item(), rel=1e-12)
    calls.clear()
    pair_loss(h, u, i, table, neg[:, 0], None, regularization=0.01)
    assert not calls


def test_the_row_search_answers_as_the_search_over_all_pairs():
    """``TripleSampler.seen`` on the CPU (a binary search of each user's row) against the
    membership of each pair in the training matrix, so the negatives drawn are unchanged."""
    rng = np.random.default_rng(7)
    m = sp.random(300, 200, density=0.05, format="csr", random_state=8)
    sampler = TripleSampler(m, "cpu")
    users = torch.from_numpy(rng.integers(300, size=5000))
    items = torch.from_numpy(rng.integers(200, size=5000))
    rows, cols = m.nonzero()
    users[:500] = torch.from_numpy(rows[:500])  # some queries that are training pairs
    items[:500] = torch.from_numpy(cols[:500])
    dense = m.toarray() != 0
    want = torch.from_numpy(dense[users.numpy(), items.numpy()])
    assert want.sum() >= 500
    assert torch.equal(sampler.seen(users, items), want)
