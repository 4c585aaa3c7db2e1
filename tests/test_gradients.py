"""BPR and WMF losses and gradients against brute-force versions on small random problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.models.bpr import bpr_loss, bpr_loss_shared
from recsys.models.wmf import wmf_loss


def brute_bpr(u, i, j, bi, bj, reg):
    total = 0.0
    for b in range(len(u)):
        x_ui = sum(u[b, f] * i[b, f] for f in range(u.shape[1])) + bi[b]
        x_uj = sum(u[b, f] * j[b, f] for f in range(u.shape[1])) + bj[b]
        total = total - torch.log(torch.sigmoid(x_ui - x_uj))
        total = total + reg * ((u[b] ** 2).sum() + (i[b] ** 2).sum() + (j[b] ** 2).sum())
        total = total + reg * (bi[b] ** 2 + bj[b] ** 2)
    return total / len(u)


def test_bpr_loss_and_gradients_match_brute_force():
    g = torch.Generator().manual_seed(0)
    leaves = [
        torch.randn(7, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)
    ]
    biases = [
        torch.randn(7, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2)
    ]
    ours = bpr_loss(*leaves, *biases, regularization=0.03)
    ours_grads = torch.autograd.grad(ours, leaves + biases)
    brute = brute_bpr(*leaves, *biases, 0.03)
    brute_grads = torch.autograd.grad(brute, leaves + biases)
    assert ours.item() == pytest.approx(brute.item(), rel=1e-12)
    for a, b in zip(ours_grads, brute_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # and the closed form of the gradient for u: -(1 - sigma(x_uij)) (i - j) + 2 reg u, over B
    u, i, j = leaves
    x = (u * i).sum(1) + biases[0] - (u * j).sum(1) - biases[1]
    want = (-(1 - torch.sigmoid(x))[:, None] * (i - j) + 2 * 0.03 * u) / len(u)
    torch.testing.assert_close(ours_grads[0], want.detach(), rtol=1e-10, atol=1e-12)


def test_bpr_loss_with_several_negatives_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    B, n, k = 5, 3, 4
    u, i = (torch.randn(B, k, generator=g, dtype=torch.float64, requires_grad=True) for _ in "ui")
    j = torch.randn(B, n, k, generator=g, dtype=torch.float64, requires_grad=True)
    bi = torch.randn(B, generator=g, dtype=torch.float64, requires_grad=True)
    bj = torch.randn(B, n, generator=g, dtype=torch.float64, requires_grad=True)
    ours = bpr_loss(u, i, j, bi, bj, regularization=0.05)
    brute = 0.0
    for b in range(B):
        for t in range(n):  # each (pair, negative) is one triple; weights 1/n per pair
            triple = brute_bpr(
                u[b : b + 1], i[b : b + 1], j[b, t : t + 1], bi[b : b + 1], bj[b, t : t + 1], 0.0
            )
            brute = brute + triple / n
            brute = brute + 0.05 * ((j[b, t] ** 2).sum() + bj[b, t] ** 2) / n
        brute = brute + 0.05 * ((u[b] ** 2).sum() + (i[b] ** 2).sum() + bi[b] ** 2)
    brute = brute / B
    leaves = [u, i, j, bi, bj]
    assert ours.item() == pytest.approx(brute.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(ours, leaves), torch.autograd.grad(brute, leaves)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bias", [False, True])
def test_hogwild_kernel_step_is_the_sgd_step_of_bpr_loss(bias):
    """User 0 has item 0 of 2, so a triple is (0, 0, 1), or skipped when the negative drawn
    is item 0; one kernel step must equal torch's SGD step on bpr_loss of that triple."""
    import numba

    from recsys.models.bpr_cpu import sgd_epoch

    g = torch.Generator().manual_seed(1)
    users, items, indptr = (np.array(a, dtype=np.int64) for a in ([0], [0], [0, 1]))
    lr, reg = 0.1, 0.03
    numba.set_num_threads(1)
    try:
        outcomes = set()
        for seed in range(8):
            u0 = torch.randn(1, 3, generator=g)
            v0 = torch.randn(2, 3, generator=g)
            b0 = torch.randn(2, generator=g) if bias else torch.empty(0)
            u, v, b = u0.clone(), v0.clone(), b0.clone()
            loss, skipped = sgd_epoch(
                users, items, indptr, u.numpy(), v.numpy(), b.numpy(), lr, reg, 1, True, seed
            )
            outcomes.add(int(skipped))
            if skipped:
                assert torch.equal(u, u0) and torch.equal(v, v0) and torch.equal(b, b0)
                continue
            params = [
                p.clone().requires_grad_() for p in (u0, v0, b0 if bias else None) if p is not None
            ]
            bu, bv = params[0], params[1]
            bb = params[2] if bias else None
            want = bpr_loss(
                bu[[0]],
                bv[[0]],
                bv[[1]],
                None if bb is None else bb[[0]],
                None if bb is None else bb[[1]],
                reg,
            )
            torch.optim.SGD(params, lr=lr).zero_grad()
            want.backward()
            torch.optim.SGD(params, lr=lr).step()
            assert loss == pytest.approx(
                want.item() - reg * float((u0**2).sum() + (v0**2).sum() + (b0**2).sum()), rel=1e-5
            )
            torch.testing.assert_close(u, bu.detach(), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(v, bv.detach(), rtol=1e-5, atol=1e-6)
            if bias:
                torch.testing.assert_close(b, bb.detach(), rtol=1e-5, atol=1e-6)
        assert outcomes == {0, 1}  # both cases were seen
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_shared_negative_bpr_loss_matches_brute_force_over_kept_pairs():
    g = torch.Generator().manual_seed(2)
    B, S, k = 6, 4, 3
    u, i = (torch.randn(B, k, generator=g, dtype=torch.float64, requires_grad=True) for _ in "ui")
    j = torch.randn(S, k, generator=g, dtype=torch.float64, requires_grad=True)
    bi = torch.randn(B, generator=g, dtype=torch.float64, requires_grad=True)
    bj = torch.randn(S, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(B, S, generator=g) < 0.7
    mask[0] = False  # a pair with no kept negative keeps only its own penalty
    ours = bpr_loss_shared(u, i, j, mask, bi, bj, regularization=0.05)
    # per pair: its penalty, plus the mean over its kept negatives of the triple terms
    brute = 0.0
    for b in range(B):
        kept = [t for t in range(S) if mask[b, t]]
        n = max(len(kept), 1)
        pair = 0.05 * ((u[b] ** 2).sum() + (i[b] ** 2).sum() + bi[b] ** 2)
        for t in kept:
            x = (u[b] * i[b]).sum() + bi[b] - (u[b] * j[t]).sum() - bj[t]
            pair = (
                pair + (-torch.log(torch.sigmoid(x)) + 0.05 * ((j[t] ** 2).sum() + bj[t] ** 2)) / n
            )
        brute = brute + pair
    brute = brute / B
    leaves = [u, i, j, bi, bj]
    assert ours.item() == pytest.approx(brute.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(ours, leaves), torch.autograd.grad(brute, leaves)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_grouped_negative_bpr_loss_is_the_per_pair_loss_of_its_groups():
    """Groups of pairs sharing a draw: the same loss and gradients as bpr_loss with each
    pair's group's negatives (all kept), and as the shared loss when there is one group."""
    g = torch.Generator().manual_seed(4)
    B, G, S, k = 8, 4, 5, 3
    u, i = (torch.randn(B, k, generator=g, dtype=torch.float64, requires_grad=True) for _ in "ui")
    j = torch.randn(G, S, k, generator=g, dtype=torch.float64, requires_grad=True)
    bi = torch.randn(B, generator=g, dtype=torch.float64, requires_grad=True)
    bj = torch.randn(G, S, generator=g, dtype=torch.float64, requires_grad=True)
    everything = torch.ones(B, S, dtype=torch.bool)
    ours = bpr_loss_shared(u, i, j, everything, bi, bj, regularization=0.05)
    group = torch.arange(B) // (B // G)
    per_pair = bpr_loss(u, i, j[group], bi, bj[group], regularization=0.05)
    leaves = [u, i, j, bi, bj]
    assert ours.item() == pytest.approx(per_pair.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(ours, leaves), torch.autograd.grad(per_pair, leaves)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    mask = torch.rand(B, S, generator=g) < 0.6
    one = bpr_loss_shared(u, i, j[:1], mask, bi, bj[:1], regularization=0.05)
    assert one.item() == pytest.approx(
        bpr_loss_shared(u, i, j[0], mask, bi, bj[0], regularization=0.05).item(), rel=1e-12
    )


def dense_wmf(x, y, conf_dense, alpha0, reg):
    """sum_obs c (s - 1)^2 + alpha0 sum over all m x n pairs s^2 + reg (|X|^2 + |Y|^2)."""
    s = x @ y.T
    observed = conf_dense > 0
    loss = (conf_dense * (s - 1) ** 2 * observed).sum()
    loss = loss + alpha0 * sum(s[u, i] ** 2 for u in range(s.shape[0]) for i in range(s.shape[1]))
    return loss + reg * (x.pow(2).sum() + y.pow(2).sum())


@pytest.mark.parametrize("alpha0", [1.0, 0.2])
def test_wmf_gramian_loss_and_gradients_match_the_explicit_sum(alpha0):
    rng = np.random.default_rng(0)
    m, n, k = 9, 7, 3
    conf = np.where(rng.random((m, n)) < 0.3, 1 + 4 * rng.random((m, n)), 0.0)
    rows, cols = np.nonzero(conf)
    x = torch.tensor(rng.standard_normal((m, k)), requires_grad=True)
    y = torch.tensor(rng.standard_normal((n, k)), requires_grad=True)
    c = torch.tensor(conf[rows, cols])
    ours = wmf_loss(x, y, torch.tensor(rows), torch.tensor(cols), c, alpha0, 0.1)
    brute = dense_wmf(x, y, torch.tensor(conf), alpha0, 0.1)
    assert ours.item() == pytest.approx(brute.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(ours, [x, y]), torch.autograd.grad(brute, [x, y])):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)

    # user batches with item_share = B / m add up to the full objective
    total = 0.0
    for batch in (np.arange(0, 4), np.arange(4, 9)):
        sel = np.isin(rows, batch)
        local = np.searchsorted(batch, rows[sel])
        total += (
            wmf_loss(
                x[batch],
                y,
                torch.tensor(local),
                torch.tensor(cols[sel]),
                torch.tensor(conf[rows[sel], cols[sel]]),
                alpha0,
                0.1,
                item_share=len(batch) / m,
            )
            .detach()
            .item()
        )
    assert total == pytest.approx(brute.item(), rel=1e-12)


def test_wmf_fold_in_is_the_exact_minimizer_of_the_users_loss():
    """Folded-in WMF user vectors: the dense closed form, and a zero gradient of wmf_loss."""
    from recsys.models.wmf import WMF, wmf_loss

    torch.manual_seed(0)
    model = WMF(n_users=5, n_items=12, factors=4, alpha0=0.3, regularization=0.7).double()
    y = model.item_tower(None).detach()
    rows = torch.tensor([0, 0, 0, 2, 2, 3])  # user 1 has no items: x = 0
    cols = torch.tensor([1, 4, 7, 0, 4, 11])
    conf = torch.tensor([1.0, 3.0, 2.0, 5.0, 1.0, 2.5], dtype=torch.float64)
    x = model.fold_in_rows(rows, cols, conf, 4)
    for u in range(4):
        sel = rows == u
        yo, c = y[cols[sel]], conf[sel]
        a = (yo.T * c) @ yo + 0.3 * y.T @ y + 0.7 * torch.eye(4, dtype=torch.float64)
        want = torch.linalg.solve(a, (yo.T * c).sum(1))
        torch.testing.assert_close(x[u], want, rtol=1e-9, atol=1e-12)
    free = x.clone().requires_grad_(True)
    loss = wmf_loss(free, y, rows, cols, conf, 0.3, 0.7, item_share=0.0)
    (grad,) = torch.autograd.grad(loss, free)
    assert grad.abs().max() < 1e-9
