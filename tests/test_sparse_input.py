"""The autoencoders' first layer read by the rows' entries (``recsys.models.sparse_input``
and ``_Autoencoder._first_layer``) against the dense product, normalization, dropout and
likelihood they stand for."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recsys.models.autoencoders import (
    MultDAE,
    MultVAE,
    _run,
    as_rows,
    binary_rows,
    dae_loss,
    multinomial_nll,
)
from recsys.models.sparse_input import csr_batch, sparse_rows_linear


def sparse_dense(seed=0, b=6, n=9, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, n, generator=g, dtype=dtype) * (torch.rand(b, n, generator=g) < 0.4)
    x[2] = 0  # an empty row
    return x


def test_the_product_and_the_weights_gradient_equal_the_dense_ones():
    x = sparse_dense()
    w = torch.randn(5, 9, dtype=torch.float64, requires_grad=True)
    rows = as_rows(x)
    out = sparse_rows_linear(rows.indptr, rows.cols, rows.values, w)
    torch.testing.assert_close(out, x @ w.T, rtol=1e-13, atol=1e-13)
    g = torch.randn(6, 5, dtype=torch.float64)
    (ours,) = torch.autograd.grad(out, w, g)
    (dense,) = torch.autograd.grad(x @ w.T, w, g)
    torch.testing.assert_close(ours, dense, rtol=1e-13, atol=1e-13)
    assert ours.is_contiguous() and ours.shape == w.shape  # nn.Linear's own layout
    assert torch.autograd.gradcheck(
        lambda w: sparse_rows_linear(rows.indptr, rows.cols, rows.values, w), [w]
    )


def test_columns_outside_the_weight_are_an_error():
    w = torch.zeros(2, 4)
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        sparse_rows_linear(torch.tensor([0, 2]), torch.tensor([1, 4]), torch.ones(2), w)


def test_a_batch_of_entries_is_the_binary_matrix_they_set():
    rows = torch.tensor([3, 0, 3, 1, 0, 3, 0])
    cols = torch.tensor([2, 5, 0, 1, 5, 2, 1])  # (0, 5) and (3, 2) given twice
    indptr, c = csr_batch(rows, cols, 5, 6)
    x = torch.zeros(5, 6)
    x[rows, cols] = 1
    assert indptr.tolist() == [0, 2, 3, 3, 5, 5]
    assert c.tolist() == [1, 5, 1, 0, 2]  # sorted within each row, each entry once
    torch.testing.assert_close(binary_rows(rows, cols, 5, 6).dense(6), x)


def test_the_likelihood_over_entries_is_the_dense_one():
    x = sparse_dense(1)
    logits = torch.randn(6, 9, dtype=torch.float64)
    assert float(multinomial_nll(logits, as_rows(x))) == pytest.approx(
        float(multinomial_nll(logits, x)), rel=1e-12
    )


@pytest.mark.parametrize("model_class", [MultDAE, MultVAE])
def test_scores_and_the_loss_equal_the_dense_encoder_without_dropout(model_class):
    torch.manual_seed(0)
    model = model_class(6, 9, hidden_dim=4, latent_dim=3, dropout=0.0, regularization=0.1)
    model = model.double().train()
    x = (sparse_dense(2) > 0).double()
    dense_code = _run(model.encoder, F.normalize(x, dim=1))  # the formula, densely
    torch.testing.assert_close(model.encode(x), dense_code, rtol=1e-12, atol=1e-12)
    if model_class is MultDAE:
        want = dae_loss(_run(model.decoder, dense_code), x, model.weights(), 0.1)
        got = model.batch_loss(binary_rows(*torch.nonzero(x, as_tuple=True), 6, 9))
        assert got.item() == pytest.approx(want.item(), rel=1e-12)


def test_input_dropout_drops_entries_at_the_rate_and_rescales_the_kept_ones():
    """With the first layer the identity, its output is the dropped-out normalized row: each
    entry 0 or v / (1 - p), zeros always zero, kept about 1 - p of the time; no dropout in
    evaluation."""
    torch.manual_seed(0)
    n = 40
    model = MultDAE(3, n, hidden_dim=n, latent_dim=2, dropout=0.3).double()
    with torch.no_grad():
        model.encoder[0].weight.copy_(torch.eye(n))
        model.encoder[0].bias.zero_()
    x = (torch.rand(3, n) < 0.5).double()
    normalized = F.normalize(x, dim=1)
    model.eval()
    torch.testing.assert_close(model._first_layer(as_rows(x)), normalized)
    model.train()
    kept = []
    for _ in range(200):
        out = model._first_layer(as_rows(x))
        assert torch.all(out[x == 0] == 0)
        on = out[x > 0]
        scaled = normalized[x > 0] / 0.7
        assert torch.all((on == 0) | torch.isclose(on, scaled, rtol=1e-12, atol=0))
        kept.append((on != 0).double().mean())
    assert float(torch.stack(kept).mean()) == pytest.approx(0.7, abs=0.02)
