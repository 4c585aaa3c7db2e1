"""LightGCN: the model contract, its propagation against the dense closed form, its loss and
gradients, and when its inference tables are recomputed."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from helpers import gradcheck_training_step

from recsys.errors import ConfigError, RecsysError
from recsys.models.bpr import bpr_loss
from recsys.models.lightgcn import LightGCN, SymmetricSpMM, layer0_penalty, normalized_adjacency
from recsys.testing import ModelContract, small_datamodule

# 4 users x 5 items; user 3 and item 4 have no interactions (zero rows of the adjacency)
R = np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=np.float64)


def dense_final_embeddings(r: np.ndarray, e0: np.ndarray, layers: int) -> np.ndarray:
    """(1 / (K + 1)) sum_l (D^-1/2 A D^-1/2)^l E0 with dense matrices."""
    m, n = r.shape
    a = np.zeros((m + n, m + n))
    a[:m, m:], a[m:, :m] = r, r.T
    deg = a.sum(1)
    inv = np.array([d**-0.5 if d > 0 else 0.0 for d in deg])
    norm = inv[:, None] * a * inv[None, :]
    return sum(np.linalg.matrix_power(norm, k) @ e0 for k in range(layers + 1)) / (layers + 1)


def tiny_model(layers: int = 2, **args) -> LightGCN:
    """A float64 LightGCN on R with the context set (no Trainer)."""
    torch.manual_seed(0)
    model = LightGCN(4, 5, factors=3, layers=layers, **args).double()
    model.set_context([f"u{u}" for u in range(4)], [f"i{i}" for i in range(5)],
                      sp.csr_matrix(R))  # fmt: skip
    return model


class TestLightGCN(ModelContract):
    model_class = LightGCN
    model_args = {"batch_size": 512, "lr": 0.02, "factors": 32}
    epochs = 3


class TestLightGCNContrastive(ModelContract):
    """LightGCN with SimpleX's CCL on many shared negatives."""

    model_class = LightGCN
    model_args = {"batch_size": 512, "lr": 0.02, "factors": 32, "loss": "ccl",
                  "shared_negatives": True, "n_negatives": 100, "regularization": 0.0}  # fmt: skip
    epochs = 3


def test_normalized_adjacency_is_the_dense_one():
    a = normalized_adjacency(sp.csr_matrix(R)).toarray()
    e = np.eye(9)
    np.testing.assert_allclose(a, dense_final_embeddings(R, e, 1) * 2 - e, atol=1e-15)
    assert a[0, 4] == pytest.approx(1 / np.sqrt(2 * 2))  # user 0 (2 items), item 0 (2 users)
    assert a[2, 7] == pytest.approx(1 / np.sqrt(3 * 1))  # user 2 (3 items), item 3 (1 user)
    assert not a[3].any() and not a[8].any()  # the isolated user and item
    np.testing.assert_array_equal(a, a.T)


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_propagation_is_the_mean_of_the_dense_adjacency_powers(layers):
    model = tiny_model(layers)
    users, items = model.propagated()
    e0 = torch.cat([model.user_emb, model.item_emb]).detach().numpy()
    want = dense_final_embeddings(R, e0, layers)
    np.testing.assert_allclose(users.detach().numpy(), want[:4], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(items.detach().numpy(), want[4:], rtol=1e-12, atol=1e-14)
    scores = model.score_users(torch.arange(4))
    np.testing.assert_allclose(scores.numpy(), want[:4] @ want[4:].T, rtol=1e-12, atol=1e-14)


def test_symmetric_product_gradient_is_the_transpose_product():
    a = normalized_adjacency(sp.csr_matrix(R))
    sparse = torch.sparse_csr_tensor(
        torch.from_numpy(a.indptr.astype(np.int64)), torch.from_numpy(a.indices.astype(np.int64)),
        torch.from_numpy(a.data), size=a.shape, check_invariants=True,
    )  # fmt: skip
    x = torch.randn(9, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: SymmetricSpMM.apply(sparse, x), (x,))


def test_training_loss_is_bpr_on_final_embeddings_plus_layer0_l2():
    """The loss of a step: mean -log sigmoid(x_ui - x_uj) on the propagated embeddings plus
    reg * 1/2 (|e_u|^2 + |e_i|^2 + |e_j|^2) / B on the layer-0 ones (He et al.'s code)."""
    model = tiny_model(2, batch_size=6, regularization=0.3)
    model.on_fit_start()
    with torch.random.fork_rng():
        torch.manual_seed(5)
        loss = model.training_step(None, 0)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        users, pos, neg = model.sampler.sample(6)
    fu, fi = (t.detach() for t in model.propagated())
    ranking = bpr_loss(fu[users], fi[pos], fi[neg])
    e_u, e_i, e_j = model.user_emb[users], model.item_emb[pos], model.item_emb[neg]
    l2 = 0.5 * sum(t.pow(2).sum() for t in (e_u, e_i, e_j)) / 6
    assert loss.item() == pytest.approx((ranking + 0.3 * l2).item(), rel=1e-12)
    assert layer0_penalty(e_u, e_i, e_j).item() == pytest.approx(l2.item(), rel=1e-12)


def test_layer0_penalty_of_shared_negatives_averages_over_the_kept_ones():
    g = torch.Generator().manual_seed(0)
    u, i, j = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((3, 2), (3, 2), (4, 2)))
    mask = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    norms = j.pow(2).sum(1)
    neg = [norms[[0, 2]].mean(), 0.0, norms.mean()]
    want = sum(0.5 * (u[b].pow(2).sum() + i[b].pow(2).sum() + neg[b]) for b in range(3)) / 3
    assert layer0_penalty(u, i, j, mask).item() == pytest.approx(want.item(), rel=1e-12)
    grouped = layer0_penalty(u[:2], i[:2], j.view(2, 2, 2), torch.ones(2, 2, dtype=torch.bool))
    want = sum(0.5 * (u[b].pow(2).sum() + i[b].pow(2).sum() + norms[2 * b : 2 * b + 2].mean())
               for b in range(2)) / 2  # fmt: skip
    assert grouped.item() == pytest.approx(want.item(), rel=1e-12)


@pytest.mark.parametrize("loss", ["bpr", "ccl"])
def test_gradcheck_of_the_trained_model_loss(loss):
    """torch.autograd.gradcheck (float64 finite differences) of the training loss through
    the propagation, at parameters after a few Adam steps, shared negatives for ccl."""
    args = {"loss": loss, "margin": 0.1, "negative_weight": 2.0}
    if loss == "ccl":
        args |= {"shared_negatives": True, "n_negatives": 3}
    model = tiny_model(2, batch_size=5, regularization=0.05, **args)
    model.on_fit_start()
    assert gradcheck_training_step(model)


def test_inference_tables_are_recomputed_after_each_optimizer_step(tmp_path):
    """Scores come from tables propagated once and kept while the embeddings stay the
    same; an optimizer step (in place) or a validation pass starts afresh."""
    model = tiny_model(2, batch_size=4, lr=0.1)
    model.on_fit_start()
    calls = []
    original = model.propagated
    model.propagated = lambda: calls.append(1) or original()
    before = model.score_users(torch.arange(4))
    model.score_users(torch.arange(2))
    model.recommend(torch.arange(4), k=2)
    assert len(calls) == 1  # one propagation for all inference calls
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    model.training_step(None, 0).backward()
    optimizer.step()
    n = len(calls)
    after = model.score_users(torch.arange(4))
    assert len(calls) == n + 1 and not torch.allclose(before, after)
    fresh = original()
    torch.testing.assert_close(after, fresh[0] @ fresh[1].T)


def test_a_validation_pass_propagates_once(tmp_path):
    L.seed_everything(0, verbose=False)
    dm = small_datamodule()
    dm.eval_batch_size = 16  # several validation batches, one propagation
    assert len(list(dm.val_dataloader())) > 1
    model = LightGCN(dm.n_users, dm.n_items, factors=8, batch_size=2048)
    model.evaluator.prepare(dm.training_data)
    calls = []
    original = model.propagated
    model.propagated = lambda: calls.append(torch.is_grad_enabled()) or original()
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    steps = 2 * model.steps_per_epoch()
    assert calls.count(True) == steps  # training: the whole graph at every step
    assert calls.count(False) == 2  # one per validation pass (2 epochs, several batches)


def test_new_users_cannot_be_folded_in_and_bad_settings_are_refused():
    model = tiny_model()
    with pytest.raises(RecsysError, match="cannot score users it was not trained on"):
        model.score_history(torch.tensor([0]), torch.tensor([1]), torch.tensor([1.0]), 1)
    with pytest.raises(ConfigError, match="model.loss"):
        LightGCN(4, 5, loss="hinge")
    with pytest.raises(ValueError, match="model.layers"):
        LightGCN(4, 5, layers=-1)
