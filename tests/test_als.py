"""ALS half-steps, loss and fold-in against dense closed forms on small random problems."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.models import ALS
from recsys.models.als_solvers import (
    TorchCSR,
    als_loss,
    row_regularization,
    solve_cg,
    solve_cholesky,
)


def random_problem(n_users=30, n_items=20, density=0.2, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[0] = False  # a user with no interactions
    mask[1, :] = True  # and one with all
    conf = np.where(mask, 1 + 5 * rng.random((n_users, n_items)), 0.0)
    return sp.csr_matrix(conf), rng


def dense_half_step(conf, other, lam, alpha0, nu):
    """x_u = (Y^T W_u Y + lambda_u I)^-1 Y^T W_u p_u, with W_u = diag(c_ui observed, alpha0
    unobserved), p_u = 1[observed], lambda_u = lam * (n_u + alpha0 * n_other)^nu."""
    c = conf.toarray()
    k = other.shape[1]
    out = np.zeros((c.shape[0], k))
    for u in range(c.shape[0]):
        observed = c[u] > 0
        w = np.where(observed, c[u], alpha0)
        lam_u = lam * (observed.sum() + alpha0 * c.shape[1]) ** nu
        a = other.T @ (w[:, None] * other) + lam_u * np.eye(k)
        out[u] = np.linalg.solve(a, other.T @ (w * observed))
    return out


def dense_loss(conf, x, y, lam, alpha0, nu):
    c = conf.toarray()
    observed = c > 0
    pred = x @ y.T
    w = np.where(observed, c, alpha0)
    fit = (w * (observed - pred) ** 2).sum()
    lam_u = lam * (observed.sum(1) + alpha0 * c.shape[1]) ** nu
    lam_i = lam * (observed.sum(0) + alpha0 * c.shape[0]) ** nu
    return fit + (lam_u * (x**2).sum(1)).sum() + (lam_i * (y**2).sum(1)).sum()


@pytest.mark.parametrize("side", ["users", "items"])
@pytest.mark.parametrize(
    ("lam", "alpha0", "nu"), [(0.1, 1.0, 0.0), (0.05, 0.3, 1.0), (2.0, 1.0, 0.5)]
)
def test_cholesky_half_step_matches_dense_closed_form(side, lam, alpha0, nu):
    conf, rng = random_problem()
    if side == "items":
        conf = conf.T.tocsr()
    k = 6
    other = rng.standard_normal((conf.shape[1], k))
    csr = TorchCSR.from_scipy(conf, dtype=torch.float64)
    reg = row_regularization(csr.counts, conf.shape[1], lam, alpha0, nu, torch.float64)
    # a small budget forces several chunks
    ours = solve_cholesky(csr, torch.from_numpy(other), reg, alpha0, budget=200).numpy()
    want = dense_half_step(conf, other, lam, alpha0, nu)
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-10)
    rel = np.linalg.norm(ours - want) / np.linalg.norm(want)
    assert rel < 1e-5


def test_cg_converges_to_cholesky():
    conf, rng = random_problem(seed=1)
    k = 5
    other = torch.from_numpy(rng.standard_normal((conf.shape[1], k)))
    start = torch.from_numpy(rng.standard_normal((conf.shape[0], k)))
    csr = TorchCSR.from_scipy(conf, dtype=torch.float64)
    reg = row_regularization(csr.counts, conf.shape[1], 0.1, 1.0, 0.0, torch.float64)
    exact = solve_cholesky(csr, other, reg, 1.0)
    few = solve_cg(csr, other, start, reg, 1.0, steps=1, budget=50)
    many = solve_cg(csr, other, start, reg, 1.0, steps=k, budget=50)  # CG is exact in k steps
    assert torch.linalg.norm(few - exact) > 1e-3 * torch.linalg.norm(exact)
    torch.testing.assert_close(many, exact, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("targets", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_cpu_kernel_matches_batched_cg(steps, targets):
    """float32 on the CPU runs the row-by-row kernel (als_cpu); float64 the padded batches:
    the same CG iterates, to float32 precision, with and without Rel-MF targets."""
    conf, rng = random_problem(n_users=60, n_items=40, seed=3)
    k = 8
    other = rng.standard_normal((conf.shape[1], k))
    start = rng.standard_normal((conf.shape[0], k))
    target = 1 + rng.random(conf.nnz)
    results = []
    for dtype in (torch.float32, torch.float64):
        csr = TorchCSR.from_scipy(conf, dtype=dtype)
        csr.target = torch.from_numpy(target).to(dtype) if targets else None
        reg = row_regularization(csr.counts, conf.shape[1], 0.5, 0.7, 0.0, dtype)
        o, s = torch.from_numpy(other).to(dtype), torch.from_numpy(start).to(dtype)
        results.append(solve_cg(csr, o, s, reg, 0.7, steps=steps, budget=100).double())
    kernel, batched = results
    assert torch.linalg.norm(batched - torch.from_numpy(start)) > 0.1  # the step moved
    torch.testing.assert_close(kernel, batched, rtol=2e-4, atol=2e-5)


def test_cpu_kernel_converges_to_dense_closed_form():
    conf, rng = random_problem(seed=4)
    k = 6
    other = rng.standard_normal((conf.shape[1], k))
    csr = TorchCSR.from_scipy(conf)
    reg = row_regularization(csr.counts, conf.shape[1], 0.1, 1.0, 0.0)
    start = torch.zeros(conf.shape[0], k)
    ours = solve_cg(csr, torch.from_numpy(other).float(), start, reg, 1.0, steps=3 * k)
    want = dense_half_step(conf, other, 0.1, 1.0, 0.0)
    np.testing.assert_allclose(ours.numpy(), want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("nu", [0.0, 1.0])
def test_loss_matches_dense(nu):
    conf, rng = random_problem(seed=2)
    x = rng.standard_normal((conf.shape[0], 4))
    y = rng.standard_normal((conf.shape[1], 4))
    csr = TorchCSR.from_scipy(conf, dtype=torch.float64)
    reg_u = row_regularization(csr.counts, conf.shape[1], 0.3, 0.5, nu, torch.float64)
    by_item = TorchCSR.from_scipy(conf.T.tocsr(), dtype=torch.float64)
    reg_i = row_regularization(by_item.counts, conf.shape[0], 0.3, 0.5, nu, torch.float64)
    ours = als_loss(csr, torch.from_numpy(x), torch.from_numpy(y), reg_u, reg_i, 0.5, budget=40)
    assert ours == pytest.approx(dense_loss(conf, x, y, 0.3, 0.5, nu), rel=1e-10)


@pytest.mark.parametrize("with_target", [False, True])
def test_loss_on_cpu_float32_factors_matches_dense(with_target):
    """The CPU kernel (float32 factors, float64 sums) against the dense objective of the same
    float32 values computed in float64; with Rel-MF style targets p_ui on observed pairs."""
    conf, rng = random_problem(n_users=50, n_items=35, seed=5)
    x = rng.standard_normal((conf.shape[0], 6)).astype(np.float32)
    y = rng.standard_normal((conf.shape[1], 6)).astype(np.float32)
    csr = TorchCSR.from_scipy(conf)  # confidences in float32, as training holds them
    c = conf.toarray().astype(np.float32).astype(np.float64)
    observed = c > 0
    p = observed.astype(np.float64)
    if with_target:
        target = 1 + rng.random(conf.nnz).astype(np.float32)
        csr.target = torch.from_numpy(target)
        p[observed] = target  # row-major order is the CSR's
    reg_u = torch.full((conf.shape[0],), 0.3)
    reg_i = torch.full((conf.shape[1],), 0.7)
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    pred = xd @ yd.T
    want = (np.where(observed, c, 0.5) * (p - pred) ** 2).sum()
    want += 0.3 * (xd**2).sum() + 0.7 * (yd**2).sum()
    ours = als_loss(csr, torch.from_numpy(x), torch.from_numpy(y), reg_u, reg_i, 0.5)
    # the Gramians are float32 products (als_loss's docstring): float32 rounding, not 1e-9
    assert ours == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(("solver", "nu"), [("cholesky", 0.0), ("cholesky", 1.0), ("cg", 0.0)])
def test_training_loss_never_increases(solver, nu):
    conf, _ = random_problem(n_users=60, n_items=40, seed=3)
    torch.manual_seed(0)
    model = ALS(60, 40, factors=8, regularization=0.01, reg_exponent=nu, solver=solver)
    model.set_train_confidence(conf)
    losses = [model.loss()]
    for _ in range(10):
        model.sweep()
        losses.append(model.loss())
    diffs = np.diff(losses)
    assert losses[-1] < 0.5 * losses[0]
    assert (diffs <= 1e-6 * abs(losses[0])).all(), losses


def test_model_half_step_float32_matches_dense():
    conf, _ = random_problem(seed=4)
    torch.manual_seed(0)
    model = ALS(
        30, 20, factors=6, regularization=0.1, alpha0=0.5, reg_exponent=1.0, solver="cholesky"
    )
    model.set_train_confidence(conf)
    items_before = model.item_factors.double().numpy()
    model.sweep()
    want = dense_half_step(conf, items_before, 0.1, 0.5, 1.0)
    np.testing.assert_allclose(model.user_factors.numpy(), want, rtol=1e-4, atol=1e-6)


def test_fold_in_equals_the_user_step():
    conf, _ = random_problem(seed=5)
    torch.manual_seed(0)
    model = ALS(30, 20, factors=6, regularization=0.1, reg_exponent=1.0, solver="cholesky")
    model.set_train_confidence(conf)
    for _ in range(3):
        model.sweep()
    model.user_factors.copy_(
        solve_cholesky(model._by_user, model.item_factors, model._reg_users, 1.0)
    )
    for u in (1, 7, 12):
        row = conf[u]
        folded = model.fold_in(torch.from_numpy(row.indices), torch.from_numpy(row.data))
        torch.testing.assert_close(folded, model.user_factors[u], rtol=1e-5, atol=1e-6)
