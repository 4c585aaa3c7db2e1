"""GF-CF and BSPM: the model contract, and their filters against dense closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError
from recsys.models.graph_filters import (
    BSPM,
    GFCF,
    integrate,
    normalized_matrix,
    top_right_singular_vectors,
)
from recsys.testing import ModelContract


class TestGFCF(ModelContract):
    model_class = GFCF
    model_args = {"ideal_rank": 16}


class TestBSPM(ModelContract):
    model_class = BSPM
    model_args = {"ideal_rank": 16}


def tiny(seed: int = 0, n_users: int = 9, n_items: int = 7) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.4).astype(np.float32)
    dense[0, :] = 0  # a user without items
    dense[:, -1] = 0  # an item no user has
    return sp.csr_matrix(dense)


def dense_parts(r: np.ndarray, k: int):
    """R~, P~ and the ideal filter of the binary ``r``, from dense algebra and a full SVD."""
    du, di = r.sum(1), r.sum(0)
    a = np.where(du > 0, 1 / np.sqrt(np.maximum(du, 1e-300)), 0)
    b = np.where(di > 0, 1 / np.sqrt(np.maximum(di, 1e-300)), 0)
    rn = a[:, None] * r * b[None, :]
    _, _, vt = np.linalg.svd(rn)
    v = vt[:k].T
    binv = np.where(b > 0, 1 / np.where(b > 0, b, 1), 0)
    return rn, rn.T @ rn, (b[:, None] * v) @ (v.T * binv[None, :])


def fitted(model_class, seen: sp.csr_matrix, **args):
    model = model_class(n_users=seen.shape[0], n_items=seen.shape[1], **args)
    model.seen = seen
    model.fit_epoch()
    return model


def test_normalization_and_svd_match_dense_algebra():
    seen = tiny()
    rn, _, _ = dense_parts(seen.toarray().astype(np.float64), 3)
    ours, _ = normalized_matrix(seen)
    np.testing.assert_allclose(ours.toarray(), rn, rtol=1e-6)
    big = sp.random(60, 50, density=0.2, random_state=1, format="csr")
    v = top_right_singular_vectors(big, 5)  # ARPACK
    _, _, vt = np.linalg.svd(big.toarray())
    np.testing.assert_allclose(v @ v.T, vt[:5].T @ vt[:5], atol=1e-5)  # same subspace


def test_gfcf_scores_are_the_dense_closed_form():
    seen = tiny()
    r = seen.toarray().astype(np.float64)
    _, p, ideal = dense_parts(r, 3)
    model = fitted(GFCF, seen, ideal_weight=0.3, ideal_rank=3)
    users = torch.arange(seen.shape[0])
    expected = r @ p + 0.3 * r @ ideal
    np.testing.assert_allclose(model.score(users).numpy(), expected, rtol=1e-4, atol=1e-6)
    # fold-in: a row given as a history is scored by the same formula
    rows, cols = np.nonzero(r[3:5])
    folded = model.score_folded(torch.as_tensor(rows), torch.as_tensor(cols), None, 2)
    np.testing.assert_allclose(folded.numpy(), expected[3:5], rtol=1e-4, atol=1e-6)


def test_bspm_em_is_the_dense_polynomial_of_one_rk4_step():
    seen = tiny(2)
    r = seen.toarray().astype(np.float64)
    _, p, ideal = dense_parts(r, 4)
    beta, h = 0.2, 2.5
    model = fitted(BSPM, seen, ideal_weight=beta, ideal_rank=4, sharpen_time=h)
    start = r @ p + beta * r @ ideal  # one Euler step of each of the blur and ideal ODEs
    hp = h * p
    rk4 = np.eye(len(p)) - hp + hp @ hp / 2 - hp @ hp @ hp / 6 + hp @ hp @ hp @ hp / 24
    got = model.score(torch.arange(seen.shape[0])).numpy()
    np.testing.assert_allclose(got, start @ rk4, rtol=1e-4, atol=1e-6)


def test_bspm_with_many_steps_follows_the_exact_ode_solution():
    """Blur over T_b and sharpen over T_s, late merge: exp(-T_b (I - P)) then exp(-T_s P)."""
    seen = tiny(4)
    r = seen.toarray().astype(np.float64)
    _, p, ideal = dense_parts(r, 3)
    ode = {"blur_time": 0.7, "blur_steps": 40, "blur_solver": "rk4", "sharpen_time": 0.4,
           "sharpen_steps": 40, "early_merge": False}  # fmt: skip
    model = fitted(BSPM, seen, ideal_weight=0.5, ideal_rank=3, **ode)
    eye = np.eye(len(p))
    exact = r @ scipy.linalg.expm(-0.7 * (eye - p)) @ scipy.linalg.expm(-0.4 * p) + 0.5 * r @ ideal
    got = model.score(torch.arange(seen.shape[0])).numpy()
    np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-5)


def test_integrate_steps_and_point_combination():
    ys = integrate(lambda y: -y, torch.ones(1, dtype=torch.float64), 1.0, 4, "euler")
    assert [float(y) for y in ys] == pytest.approx([1, 0.75, 0.5625, 0.421875, 0.31640625])
    seen = tiny(5)
    r = seen.toarray().astype(np.float64)
    _, p, _ = dense_parts(r, 2)
    model = fitted(BSPM, seen, ideal_weight=0.0, ideal_rank=0, blur_steps=2,
                   sharpen_solver="euler", point_combination=True)  # fmt: skip
    b1 = r + 0.5 * (r @ p - r)
    b2 = b1 + 0.5 * (b1 @ p - b1)
    s1 = b2 - 2.5 * b2 @ p
    got = model.score(torch.arange(seen.shape[0])).numpy()
    np.testing.assert_allclose(got, (b1 + b2 + s1) / 3, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bad", [{"sharpen_solver": "dopri5"}, {"blur_steps": 0},
                                 {"ideal_rank": -1}])  # fmt: skip
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        BSPM(n_users=3, n_items=3, **bad)
