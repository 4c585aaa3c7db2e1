"""Popularity corrections in training (Rel-MF for ALS and WMF, IPW for BPR) and at inference,
against dense closed forms and brute-force sums."""

from __future__ import annotations

import hydra
import lightning as L
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from helpers import SMALL_DATA, compose_config
from test_als import random_problem

from recsys.data.datamodule import RecsysDataModule
from recsys.models import ALS
from recsys.models.als_solvers import (
    TorchCSR,
    als_loss,
    solve_cg,
    solve_cholesky,
)
from recsys.models.bpr import bpr_loss, bpr_loss_shared
from recsys.models.checkpoint import load_model
from recsys.models.wmf import wmf_loss


def relmf_user_step(y_obs, theta, other, lam):
    """Minimizer of Rel-MF's loss for each user, derived here from the loss itself:
    sum_i (Y_ui / theta_i)(1 - x.v_i)^2 + (1 - Y_ui / theta_i)(x.v_i)^2 + lam |x|^2 is
    x^T (V^T V + lam I) x - 2 x^T sum_i (Y_ui / theta_i) v_i + const."""
    k = other.shape[1]
    a = other.T @ other + lam * np.eye(k)
    return np.linalg.solve(a, other.T @ (y_obs / theta[None, :]).T).T


def targeted(conf: sp.csr_matrix, theta: np.ndarray, device="cpu") -> TorchCSR:
    csr = TorchCSR.from_scipy(conf, device, dtype=torch.float64)
    csr.target = torch.from_numpy(1.0 / theta)[csr.indices]
    return csr


def test_relmf_user_step_equals_the_dense_minimizer_of_relmf_loss():
    conf, rng = random_problem(seed=3)
    binary = conf.copy()
    binary.data[:] = 1.0  # Rel-MF has weight 1 on every pair: c = 1, alpha0 = 1
    n_users, n_items = conf.shape
    theta = rng.uniform(0.05, 1.0, n_items)
    other = rng.standard_normal((n_items, 4))
    lam = 0.3
    want = relmf_user_step(binary.toarray(), theta, other, lam)
    reg = torch.full((n_users,), lam, dtype=torch.float64)
    got = solve_cholesky(targeted(binary, theta), torch.from_numpy(other), reg, 1.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-8, atol=1e-10)
    # CG converges to the same point
    cg = solve_cg(
        targeted(binary, theta),
        torch.from_numpy(other),
        torch.zeros(n_users, 4, dtype=torch.float64),
        reg,
        1.0,
        8,
    )
    np.testing.assert_allclose(cg.numpy(), want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("alpha0", [1.0, 0.4])
def test_relmf_half_step_with_confidences_and_its_loss(alpha0):
    """With confidences c and alpha0, the target 1 / theta_i on observed pairs: dense normal
    equations, and the loss as a dense sum."""
    conf, rng = random_problem(seed=4)
    c = conf.toarray()
    observed = c > 0
    theta = rng.uniform(0.1, 1.0, c.shape[1])
    other = rng.standard_normal((c.shape[1], 3))
    want = np.zeros((c.shape[0], 3))
    for u in range(c.shape[0]):
        w = np.where(observed[u], c[u], alpha0)
        p = np.where(observed[u], 1 / theta, 0.0)
        want[u] = np.linalg.solve(
            other.T @ (w[:, None] * other) + 0.2 * np.eye(3), other.T @ (w * p)
        )
    reg = torch.full((c.shape[0],), 0.2, dtype=torch.float64)
    got = solve_cholesky(targeted(conf, theta), torch.from_numpy(other), reg, alpha0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-8, atol=1e-10)

    x = rng.standard_normal((c.shape[0], 3))
    pred = x @ other.T
    dense = (np.where(observed, c, alpha0) * (np.where(observed, 1 / theta, 0) - pred) ** 2).sum()
    dense += 0.2 * (x**2).sum() + 0.5 * (other**2).sum()
    ours = als_loss(
        targeted(conf, theta),
        torch.from_numpy(x),
        torch.from_numpy(other),
        reg,
        torch.full((c.shape[1],), 0.5, dtype=torch.float64),
        alpha0,
    )
    assert ours == pytest.approx(dense, rel=1e-10)


def test_als_relmf_model_uses_the_item_targets_on_both_sides():
    conf, rng = random_problem(seed=5)
    n_users, n_items = conf.shape
    theta = rng.uniform(0.1, 1.0, n_items)
    model = ALS(
        n_users, n_items, factors=3, regularization=0.1, solver="cholesky", correction="relmf"
    ).double()
    model.set_propensity(theta)
    model.set_train_confidence(conf)
    t_user = model._by_user.target.numpy()
    np.testing.assert_allclose(t_user, 1 / theta[conf.tocsr().indices])
    item_major = conf.T.tocsr()
    rows_of_entries = np.repeat(np.arange(n_items), np.diff(item_major.indptr))
    np.testing.assert_allclose(model._by_item.target.numpy(), 1 / theta[rows_of_entries])
    before = model.loss()
    model.sweep()
    assert model.loss() < before


def dense_relmf(x, y, observed, theta):
    s = x @ y.T
    w = observed / theta[None, :]
    return (w * (1 - s) ** 2 + (1 - w) * s**2).sum()


def test_wmf_relmf_loss_is_relmf_at_unit_confidence():
    rng = np.random.default_rng(0)
    m, n, k = 8, 6, 3
    observed = (rng.random((m, n)) < 0.4).astype(float)
    rows, cols = np.nonzero(observed)
    theta = rng.uniform(0.1, 1.0, n)
    x = torch.tensor(rng.standard_normal((m, k)), requires_grad=True)
    y = torch.tensor(rng.standard_normal((n, k)), requires_grad=True)
    ours = wmf_loss(
        x,
        y,
        torch.tensor(rows),
        torch.tensor(cols),
        torch.ones(len(rows), dtype=torch.float64),
        1.0,
        0.0,
        inv_theta=torch.tensor(1 / theta[cols]),
    )
    brute = dense_relmf(x, y, torch.tensor(observed), torch.tensor(theta))
    assert ours.item() == pytest.approx(brute.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(ours, [x, y]), torch.autograd.grad(brute, [x, y])):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_bpr_pair_weights_scale_each_pairs_ranking_term():
    g = torch.Generator().manual_seed(0)
    u, i = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    j = torch.randn(5, 4, 3, generator=g)
    w = torch.rand(5, generator=g) + 0.5
    plain = [bpr_loss(u[b : b + 1], i[b : b + 1], j[b : b + 1]) for b in range(5)]
    want = (
        sum(w[b] * plain[b] for b in range(5)) / 5
        + 0.1 * ((u**2).sum() + (i**2).sum() + (j**2).sum(2).mean(1).sum()) / 5
    )
    got = bpr_loss(u, i, j, regularization=0.1, pair_weight=w)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    # the shared-negative version agrees when every pair shares the same negatives
    shared = bpr_loss_shared(u, i, j[0], torch.ones(5, 4, dtype=torch.bool), pair_weight=w)
    same = bpr_loss(u, i, j[0].expand(5, 4, 3), pair_weight=w)
    assert float(shared) == pytest.approx(float(same), rel=1e-6)


def fit_one_epoch(tmp_path, overrides: list[str]):
    cfg = compose_config("train", [*SMALL_DATA, *overrides], tmp_path)
    dm = RecsysDataModule.from_config(cfg)
    model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    return model, dm, trainer


def test_score_adjustment_divides_scores_and_survives_a_checkpoint(tmp_path):
    model, dm, trainer = fit_one_epoch(tmp_path, ["model=popularity", "propensity=popularity"])
    users = torch.arange(5)
    raw_items, _ = model.recommend(users, k=10)
    model.set_score_adjustment(dm.training_data.propensity, 3.0)  # n_i / n_i^1.5: reversed
    items, scores = model.recommend(users, k=10)
    want = model.score(users) / torch.from_numpy(dm.training_data.propensity**3.0).float()
    top = torch.gather(want, 1, items.clamp(min=0))
    torch.testing.assert_close(scores, top)
    assert not torch.equal(items, raw_items)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    again = load_model(path)
    torch.testing.assert_close(again.recommend(users, k=10)[1], scores)
