"""SimpleX's cosine contrastive loss (CCL): against a brute-force loop, in BPR (``loss=ccl``)
through the model contract, and a finite-difference check of the trained model's loss."""

from __future__ import annotations

import pytest
import torch
from helpers import gradcheck_training_step

from recsys.errors import ConfigError
from recsys.models.bpr import BPR
from recsys.models.contrastive import ccl_loss
from recsys.testing import ModelContract, small_datamodule


def cos(a, b):
    return (a * b).sum() / (a.pow(2).sum().sqrt() * b.pow(2).sum().sqrt())


def brute_ccl(u, i, negatives, margin, w, reg, weights=None):
    """The docstring's formula pair by pair: ``negatives[b]`` is the list of pair b's
    negative vectors."""
    total = 0.0
    for b in range(len(u)):
        kept = negatives[b]
        n = max(len(kept), 1)
        ranking = 1 - cos(u[b], i[b])
        ranking = ranking + w / n * sum(torch.clamp(cos(u[b], j) - margin, min=0) for j in kept)
        if weights is not None:
            ranking = ranking * weights[b]
        norms = sum(j.pow(2).sum() for j in kept) / n if kept else 0.0
        total = total + ranking + reg * (u[b].pow(2).sum() + i[b].pow(2).sum() + norms)
    return total / len(u)


def leaves(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]


def assert_same(ours, brute, inputs):
    assert ours.item() == pytest.approx(brute.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(ours, inputs), torch.autograd.grad(brute, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [None, 1, 5])
def test_ccl_with_per_pair_negatives_matches_brute_force(n):
    B, k = 6, 4
    u, i, j = leaves((B, k), (B, k), (B, k) if n is None else (B, n, k))
    weights = torch.rand(B, dtype=torch.float64) + 0.5
    # margin 0.1: about half of the random cosines are above it, so both branches of max run
    ours = ccl_loss(u, i, j, margin=0.1, negative_weight=3.0, regularization=0.02,
                    pair_weight=weights)  # fmt: skip
    lists = [[j[b]] if n is None else list(j[b]) for b in range(B)]
    assert_same(ours, brute_ccl(u, i, lists, 0.1, 3.0, 0.02, weights), [u, i, j])


@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_ccl_with_shared_negatives_averages_over_the_kept_ones(reg):
    B, S, k = 7, 5, 3
    u, i, j = leaves((B, k), (B, k), (S, k), seed=1)
    mask = torch.rand(B, S, generator=torch.Generator().manual_seed(2)) < 0.6
    mask[0] = False  # no kept negative: the pair keeps its positive term and penalty
    ours = ccl_loss(u, i, j, margin=-0.2, negative_weight=2.0, mask=mask, regularization=reg)
    lists = [[j[s] for s in range(S) if mask[b, s]] for b in range(B)]
    assert_same(ours, brute_ccl(u, i, lists, -0.2, 2.0, reg), [u, i, j])


def test_ccl_with_grouped_negatives_scores_each_group_against_its_own_draw():
    B, G, S, k = 8, 4, 3, 3
    u, i, j = leaves((B, k), (B, k), (G, S, k), seed=3)
    mask = torch.rand(B, S, generator=torch.Generator().manual_seed(4)) < 0.7
    ours = ccl_loss(u, i, j, margin=0.0, negative_weight=5.0, mask=mask, regularization=0.01)
    group = [b // (B // G) for b in range(B)]
    lists = [[j[group[b], s] for s in range(S) if mask[b, s]] for b in range(B)]
    assert_same(ours, brute_ccl(u, i, lists, 0.0, 5.0, 0.01), [u, i, j])


def test_ccl_gradient_of_a_negative_below_the_margin_is_zero():
    u, i, j = leaves((1, 2), (1, 2), (1, 2))
    with torch.no_grad():
        u.copy_(torch.tensor([[1.0, 0.0]]))
        j.copy_(torch.tensor([[0.0, 1.0]]))  # cos 0 < margin 0.5
    loss = ccl_loss(u, i, j, margin=0.5, negative_weight=10.0)
    (grad,) = torch.autograd.grad(loss, j)
    assert torch.equal(grad, torch.zeros_like(j))
    assert loss.item() == pytest.approx(1 - cos(u[0], i[0]).item())


def test_bad_ccl_settings_are_config_errors():
    with pytest.raises(ConfigError, match="model.loss"):
        BPR(4, 5, loss="softmax")
    with pytest.raises(ConfigError, match="model.margin"):
        BPR(4, 5, loss="ccl", margin=1.5)
    with pytest.raises(ConfigError, match="model.negative_weight"):
        BPR(4, 5, loss="ccl", negative_weight=-1)
    with pytest.raises(ConfigError, match="item_bias"):
        BPR(4, 5, loss="ccl", item_bias=True)


class TestBPRContrastive(ModelContract):
    """MF with CCL and many negatives shared by each batch (SimpleX's point)."""

    model_class = BPR
    model_args = {
        "loss": "ccl",
        "shared_negatives": True,
        "n_negatives": 100,
        "batch_size": 256,
        "lr": 0.03,
        "regularization": 0.0,
    }
    epochs = 3

    def test_scores_are_cosines(self, tmp_path):
        model, _, _ = self.fitted(tmp_path)
        scores = model.score_users(torch.arange(model.n_users))
        assert scores.abs().max() <= 1 + 1e-5
        x, y = model.user_emb.detach()[:3], model.item_emb.detach()
        want = torch.nn.functional.cosine_similarity(x[:, None], y[None], dim=2)
        torch.testing.assert_close(scores[:3], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shared", [False, True])
def test_gradcheck_of_the_trained_ccl_model_loss(shared):
    """torch.autograd.gradcheck (float64 finite differences) of BPR's training loss with
    ``loss=ccl``, at parameters after a few Adam steps, on a tiny dataset."""
    torch.manual_seed(0)
    data = small_datamodule(n_users=10, n_items=8, mean_interactions=3).training_data
    args = {"n_negatives": 4, "shared_negatives": shared}
    model = BPR(10, 8, factors=3, batch_size=6, loss="ccl", margin=0.2, negative_weight=2.0,
                regularization=0.01, lr=0.05, **args).double()  # fmt: skip
    model.prepare(data)
    model.on_fit_start()
    assert gradcheck_training_step(model)
