"""Mult-DAE and Mult-VAE: the model contract, their losses against brute-force sums, finite-
difference gradients, KL annealing, fold-in, and one-line errors for bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.func import functional_call

from recsys.errors import ConfigError
from recsys.models.autoencoders import (
    MultDAE,
    MultVAE,
    anneal_beta,
    dae_loss,
    gaussian_kl,
    multinomial_nll,
    vae_loss,
)
from recsys.testing import ModelContract

SMALL = {"hidden_dim": 64, "latent_dim": 16, "batch_users": 32, "lr": 3e-3}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: on a shared 2-core machine, torch's second thread mostly waits
    (a contract fit takes 0.6 s in one thread, up to 10 s in two under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _FoldInIsScoring:
    def test_fold_in_equals_scoring_the_row_as_a_training_user(self, tmp_path):
        """A new user with exactly a training user's items gets that user's scores."""
        model, dm, _ = self.fitted(tmp_path)
        users = torch.tensor([0, 5, 17])
        conf = dm.training_data.confidence[users.numpy()]
        rows = torch.repeat_interleave(torch.arange(3), torch.from_numpy(conf.indptr).diff())
        cols = torch.from_numpy(conf.indices).long()
        # the confidences are not binary (c = 1 + 2 r): the autoencoders read the items only
        folded = model.score_history(rows, cols, torch.from_numpy(conf.data), 3)
        torch.testing.assert_close(folded, model.score_users(users), rtol=0, atol=0)
        empty = model.score_history(rows[:0], cols[:0], torch.ones(0), 1)
        assert torch.isfinite(empty).all()


class TestMultDAEContract(_FoldInIsScoring, ModelContract):
    model_class = MultDAE
    model_args = SMALL
    epochs = 4


class TestMultVAEContract(_FoldInIsScoring, ModelContract):
    model_class = MultVAE
    model_args = {**SMALL, "total_anneal_steps": 20}
    epochs = 4

    def test_the_kl_weight_anneals_with_the_global_step(self, tmp_path):
        model, _, trainer = self.fitted(tmp_path)
        steps = self.epochs * math.ceil(model.n_users / SMALL["batch_users"])
        assert trainer.global_step == steps
        assert model.beta() == pytest.approx(min(0.2, steps / 20))


# -- the losses against brute force ------------------------------------------------------
def _tiny(seed: int = 0, b: int = 3, n: int = 5, d: int = 2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, n, generator=g, dtype=torch.float64)
    x = (torch.rand(b, n, generator=g) < 0.5).double()
    x[0, 0] = 1.0  # no empty first row
    mu = torch.randn(b, d, generator=g, dtype=torch.float64)
    logvar = torch.randn(b, d, generator=g, dtype=torch.float64)
    weights = [torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(2)]
    return logits, x, mu, logvar, weights


def test_multinomial_nll_and_kl_match_explicit_loops():
    logits, x, mu, logvar, weights = _tiny()
    b, n = x.shape
    nll, kl = 0.0, 0.0
    for u in range(b):
        norm = math.log(sum(math.exp(float(logits[u, j])) for j in range(n)))
        for i in range(n):
            nll -= float(x[u, i]) * (float(logits[u, i]) - norm)
        for k in range(mu.shape[1]):
            m, s2 = float(mu[u, k]), math.exp(float(logvar[u, k]))
            # KL(N(m, s2) || N(0, 1)) = log(1 / s) + (s2 + m^2) / 2 - 1 / 2
            kl += -0.5 * math.log(s2) + (s2 + m * m) / 2 - 0.5
    assert float(multinomial_nll(logits, x)) == pytest.approx(nll / b, rel=1e-12)
    assert float(gaussian_kl(mu, logvar)) == pytest.approx(kl / b, rel=1e-12)
    l2 = sum(float(w[r, c]) ** 2 for w in weights for r in range(4) for c in range(3))
    assert float(dae_loss(logits, x, weights, 0.3)) == pytest.approx(nll / b + 0.3 * l2, rel=1e-12)
    assert float(vae_loss(logits, x, mu, logvar, 0.7, weights, 0.3)) == pytest.approx(
        nll / b + 0.7 * kl / b + 0.3 * l2, rel=1e-12
    )


def test_losses_pass_a_finite_difference_gradient_check():
    logits, x, mu, logvar, weights = _tiny(1)
    leaves = [t.clone().requires_grad_() for t in (logits, mu, logvar, *weights)]
    assert torch.autograd.gradcheck(
        lambda lo, m, lv, w1, w2: vae_loss(lo, x, m, lv, 0.4, [w1, w2], 0.05), leaves
    )
    assert torch.autograd.gradcheck(
        lambda lo, w1, w2: dae_loss(lo, x, [w1, w2], 0.05), [leaves[0], *leaves[3:]]
    )


@pytest.mark.parametrize("model_class", [MultDAE, MultVAE])
def test_the_models_training_loss_passes_a_gradient_check_in_its_parameters(model_class):
    """The whole batch loss (normalization, MLPs, reparameterization) as a function of every
    parameter, in float64, with dropout off and the VAE's noise fixed."""
    torch.manual_seed(0)
    model = model_class(4, 6, hidden_dim=3, latent_dim=2, dropout=0.0, regularization=0.1)
    model = model.double().train()
    x = torch.tensor([[1, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]]).double()
    eps = torch.randn(3, 2, dtype=torch.float64)
    names = [name for name, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in model.named_parameters()]

    def loss(*values):
        state = dict(zip(names, values))
        if model_class is MultVAE:
            return functional_call(model, state, (x,), {"eps": eps, "beta": 0.3}, strict=False)
        return functional_call(model, state, (x,), strict=False)

    model.forward = model.batch_loss  # functional_call calls forward
    assert torch.autograd.gradcheck(loss, params)


def test_the_vae_decodes_a_sample_in_training_and_the_mean_in_scoring():
    torch.manual_seed(0)
    model = MultVAE(4, 6, hidden_dim=3, latent_dim=2, dropout=0.0).double()
    x = torch.tensor([[1, 0, 1, 0, 0, 1]]).double()
    mu, logvar = model.split_code(model.encode(x))
    zero = torch.zeros(1, 2, dtype=torch.float64)
    at_mean = vae_loss(model.logits(x), x, mu, logvar, 0.5, model.weights(), 0.0)
    torch.testing.assert_close(model.batch_loss(x, eps=zero, beta=0.5), at_mean)
    assert model.batch_loss(x, eps=torch.ones(1, 2), beta=0.5) != at_mean


def test_the_encoder_reads_the_l2_normalized_row_with_dropout_only_in_training():
    torch.manual_seed(0)
    model = MultDAE(4, 6, hidden_dim=3, latent_dim=2, dropout=0.5).eval()
    x = torch.tensor([[1.0, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0]])
    torch.testing.assert_close(model.encode(3 * x), model.encode(x))
    model.train()
    draws = {tuple(model.encode(x).flatten().tolist()) for _ in range(8)}
    assert len(draws) > 1  # input dropout in training


def test_the_vae_loss_in_parts_is_the_loss_and_logs_the_likelihood_without_kl():
    torch.manual_seed(0)
    model = MultVAE(4, 6, hidden_dim=3, latent_dim=2, dropout=0.0, regularization=0.1).double()
    x = torch.tensor([[1, 0, 1, 0, 0, 1], [0, 1, 1, 0, 0, 0]]).double()
    eps = torch.randn(2, 2, dtype=torch.float64)
    loss, watched = model.batch_loss(x, eps=eps, beta=0.3, parts=True)
    torch.testing.assert_close(loss, model.batch_loss(x, eps=eps, beta=0.3))
    mu, logvar = model.split_code(model.encode(x))
    torch.testing.assert_close(loss - watched, 0.3 * gaussian_kl(mu, logvar))


def test_only_users_with_training_items_are_trained_on():
    """Held-out users of a strong-generalization split have empty training rows."""
    conf = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 1]]))
    model = MultDAE(5, 3, hidden_dim=0, latent_dim=2, batch_users=2)
    model.set_context(range(5), range(3), conf)
    assert model._users_with_items().tolist() == [0, 2, 4]
    assert model.steps_per_epoch() == 2


def test_kl_annealing_follows_the_reference_schedule():
    assert anneal_beta(0, 0.2, 1000) == 0.0
    assert anneal_beta(100, 0.2, 1000) == pytest.approx(0.1)
    assert anneal_beta(5000, 0.2, 1000) == 0.2
    assert anneal_beta(3, 0.2, 0) == 0.2


def test_the_architecture_is_the_papers():
    vae, dae = MultVAE(10, 50), MultDAE(10, 50)
    assert [(m.in_features, m.out_features) for m in vae.encoder] == [(50, 600), (600, 400)]
    assert [(m.in_features, m.out_features) for m in vae.decoder] == [(200, 600), (600, 50)]
    assert [(m.in_features, m.out_features) for m in dae.encoder] == [(50, 600), (600, 200)]
    shallow = MultDAE(10, 50, hidden_dim=0)
    assert [(m.in_features, m.out_features) for m in (*shallow.encoder, *shallow.decoder)] == [
        (50, 200),
        (200, 50),
    ]


@pytest.mark.parametrize(
    "model_class,args,key",
    [
        (MultDAE, {"dropout": 1.0}, "model.dropout"),
        (MultDAE, {"latent_dim": 0}, "model.latent_dim"),
        (MultDAE, {"hidden_dim": -1}, "model.hidden_dim"),
        (MultDAE, {"lr": 0.0}, "model.lr"),
        (MultVAE, {"regularization": -1.0}, "model.regularization"),
        (MultVAE, {"batch_users": 0}, "model.batch_users"),
        (MultVAE, {"anneal_cap": -0.1}, "model.anneal_cap"),
        (MultVAE, {"total_anneal_steps": -5}, "model.total_anneal_steps"),
    ],
)
def test_bad_settings_are_one_line_config_errors(model_class, args, key):
    with pytest.raises(ConfigError, match=key) as info:
        model_class(10, 20, **args)
    assert "\n" not in str(info.value)
