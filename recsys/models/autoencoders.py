"""Mult-DAE and Mult-VAE (Liang et al. 2018, "Variational Autoencoders for Collaborative
Filtering"): autoencoders of users' binary item rows under a multinomial likelihood.

Users are rows. x_u ``(n_items,)`` is user u's binary training row. The encoder reads
dropout(x_u / |x_u|) through an MLP [n_items -> hidden_dim -> latent_dim] (tanh between
layers; ``hidden_dim`` 0 leaves out the hidden layer); the decoder maps a latent vector
through [latent_dim -> hidden_dim -> n_items] to logits f(z) ``(n_items,)``, and the model's
scores are these logits (ranking by them is ranking by softmax(f(z))). Both train with Adam
on batches of ``batch_users`` users (one epoch: every training user once, in random order).
Users unseen in training are folded in by passing their known items through the encoder
(``score_folded``), exactly as a training user is scored from its training row. Rows travel
as their entries (``Rows``): on the CPU the first layer reads only those
(``sparse_input.sparse_rows_linear``) and the likelihood sums over them.

Defaults follow the paper's reference code (github.com/dawenl/vae_cf): dropout 0.5 on the
input, Adam lr 1e-3, 500 users a batch, Xavier-uniform weights and N(0, 0.001^2) biases,
KL annealing beta_t = min(anneal_cap, t / total_anneal_steps) with cap 0.2 over 200,000
steps, L2 weight lambda 0 for the VAE and 0.01 / 500 for the DAE. The reference code's DAE
is [I -> 200 -> I] (``hidden_dim=0``); our default is the paper's [I -> 600 -> 200 -> 600 -> I]
for both.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys.data.interactions import row_entries
from recsys.errors import ConfigError
from recsys.models.base import RecommenderModule
from recsys.models.sparse_input import (
    csr_batch,
    indptr_of,
    row_of_entries,
    sparse_rows_linear,
)
from recsys.models.training import (
    make_optimizer,
    row_positions,
    seed_rank_stream,
    shared_order,
    user_batch,
)


class Rows(NamedTuple):
    """B sparse user rows of width n_items in CSR form: ``indptr`` ``(B + 1,)``, ``cols``
    ``(nnz,)`` (sorted within each row, no repeats) and ``values`` ``(nnz,)``."""

    indptr: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    def rows(self) -> torch.Tensor:
        """The row of each entry, ``(nnz,)``."""
        return row_of_entries(self.indptr)

    def dense(self, n_items: int) -> torch.Tensor:
        x = torch.zeros((self.n, n_items), dtype=self.values.dtype, device=self.values.device)
        x[self.rows(), self.cols] = self.values
        return x


def as_rows(x: torch.Tensor | Rows) -> Rows:
    """``x`` as ``Rows``: a dense ``(B, n_items)`` tensor's entries that are not zero."""
    if isinstance(x, Rows):
        return x
    rows, cols = torch.nonzero(x, as_tuple=True)  # row-major: sorted by row, then column
    return Rows(indptr_of(rows, len(x)), cols, x[rows, cols])


def binary_rows(rows: torch.Tensor, cols: torch.Tensor, n_users: int, n_items: int) -> Rows:
    """``Rows`` of the binary ``(n_users, n_items)`` matrix with ones at (rows, cols) (an
    entry given twice is one)."""
    indptr, cols = csr_batch(rows, cols, n_users, n_items)
    return Rows(indptr, cols, torch.ones(len(cols), device=cols.device))


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor | Rows) -> torch.Tensor:
    """Mean over the B users of -sum_i x_ui log softmax(logits_u)_i; ``logits`` ``(B,
    n_items)``, ``x`` ``(B, n_items)`` dense or its ``Rows`` (a sum over its entries only)."""
    if isinstance(x, Rows):
        picked = F.log_softmax(logits, dim=1)[x.rows(), x.cols]
        return -(picked * x.values.to(logits.dtype)).sum() / x.n
    return -(F.log_softmax(logits, dim=1) * x).sum(1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over the B users of KL(N(mu_u, diag exp(logvar_u)) || N(0, I)) =
    sum_k (exp(logvar_uk) + mu_uk^2 - 1 - logvar_uk) / 2; ``mu``, ``logvar`` ``(B, d)``."""
    return (0.5 * (logvar.exp() + mu**2 - 1 - logvar)).sum(1).mean()


def l2_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """sum over the weight matrices W of |W|_F^2 (biases are not penalized)."""
    return sum(w.pow(2).sum() for w in weights)


def dae_loss(
    logits: torch.Tensor,
    x: torch.Tensor | Rows,
    weights: list[torch.Tensor],
    regularization: float,
) -> torch.Tensor:
    """Mult-DAE's loss of a batch: ``multinomial_nll(logits, x)`` + lambda sum_W |W|^2."""
    return multinomial_nll(logits, x) + _l2(weights, regularization)


def _l2(weights: list[torch.Tensor], regularization: float) -> torch.Tensor | float:
    """lambda sum_W |W|^2; 0 without computing it for lambda 0 (the same loss and
    gradients, to the bit)."""
    return regularization * l2_penalty(weights) if regularization else 0.0


def vae_loss(
    logits: torch.Tensor,
    x: torch.Tensor | Rows,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float,
    weights: list[torch.Tensor],
    regularization: float,
) -> torch.Tensor:
    """Mult-VAE's loss of a batch (the negative beta-ELBO, per user, plus L2):

        1/B sum_u [ -sum_i x_ui log softmax(f(z_u))_i + beta KL(q(z | x_u) || N(0, I)) ]
        + lambda sum_W |W|^2,

    with z_u = mu_u + eps * exp(logvar_u / 2) drawn once (``logits`` = f(z_u))."""
    return (
        multinomial_nll(logits, x) + beta * gaussian_kl(mu, logvar) + _l2(weights, regularization)
    )


def anneal_beta(step: int, anneal_cap: float, total_anneal_steps: int) -> float:
    """The KL weight at training step ``step`` (0-based): min(cap, step / total_anneal_steps),
    or the cap throughout when ``total_anneal_steps`` is 0 (the reference code's rule)."""
    if total_anneal_steps <= 0:
        return float(anneal_cap)
    return min(float(anneal_cap), step / total_anneal_steps)


def _mlp(dims: list[int]) -> nn.ModuleList:
    """Linear layers dims[0] -> dims[1] -> ...; Xavier-uniform weights, biases from a
    normal of std 0.001 truncated at two deviations (the reference code's initialization)."""
    layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)
        nn.init.trunc_normal_(layer.bias, std=0.001, a=-0.002, b=0.002)
    return layers


def _run(layers: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    """``layers`` applied in turn, tanh between them (none after the last)."""
    for i, layer in enumerate(layers):
        h = layer(h)
        if i < len(layers) - 1:
            h = torch.tanh(h)
    return h


class _Autoencoder(RecommenderModule):
    """What Mult-DAE and Mult-VAE share: the MLPs, the batches of binary user rows, the
    training loop and scoring. Subclasses give ``code_dims`` (the encoder's output width),
    ``latent(h)`` (the decoder's input at inference) and ``batch_loss(x)``."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        hidden_dim: int,
        latent_dim: int,
        dropout: float,
        regularization: float,
        lr: float,
        batch_users: int,
    ) -> None:
        super().__init__(n_users, n_items)
        _check(hidden_dim >= 0, "model.hidden_dim", hidden_dim, ">= 0 (0: no hidden layer)")
        _check(latent_dim >= 1, "model.latent_dim", latent_dim, ">= 1")
        _check(0 <= dropout < 1, "model.dropout", dropout, "in [0, 1)")
        _check(regularization >= 0, "model.regularization", regularization, ">= 0")
        _check(lr > 0, "model.lr", lr, "> 0")
        _check(batch_users >= 1, "model.batch_users", batch_users, ">= 1")
        hidden = [int(hidden_dim)] if hidden_dim else []
        self.encoder = _mlp([n_items, *hidden, self.code_dims(int(latent_dim))])
        self.decoder = _mlp([int(latent_dim), *hidden[::-1], n_items])
        self.input_dropout = nn.Dropout(float(dropout))
        self._order: torch.Tensor | None = None

    def code_dims(self, latent_dim: int) -> int:
        return latent_dim

    def weights(self) -> list[torch.Tensor]:
        """The weight matrices (the L2 penalty's)."""
        return [layer.weight for layer in (*self.encoder, *self.decoder)]

    def encode(self, x: torch.Tensor | Rows) -> torch.Tensor:
        """The encoder's output ``(B, code_dims)`` for binary rows ``x`` ``(B, n_items)``
        (dense or ``Rows``): L2-normalized, input dropout (training mode only), the MLP."""
        first, rows = self.encoder[0], as_rows(x)
        if first.weight.device.type == "cpu":
            h = self._first_layer(rows)
        else:
            h = first(self.input_dropout(F.normalize(rows.dense(self.n_items), dim=1)))
        return _run(self.encoder[1:], torch.tanh(h)) if len(self.encoder) > 1 else h

    def _first_layer(self, x: Rows) -> torch.Tensor:
        """The first layer of ``encode`` read by the rows' entries only (on the CPU): the
        same normalization, the product within float rounding at nnz x hidden cost instead of
        B x n_items x hidden, and dropout noise drawn for the entries only (dropout leaves a
        zero entry zero whatever its draw, so this is the same model; it draws other random
        numbers than ``nn.Dropout`` over the dense batch, which took a quarter of a step)."""
        layer, rows = self.encoder[0], x.rows()
        values = x.values.to(layer.weight.dtype)
        norms = torch.zeros(x.n, dtype=values.dtype).index_add_(0, rows, values * values)
        values = values / norms.sqrt().clamp_min(1e-12)[rows]  # F.normalize's rule
        p = self.input_dropout.p
        if self.training and p > 0:
            values = values * torch.empty_like(values).bernoulli_(1 - p).div_(1 - p)
        return sparse_rows_linear(x.indptr, x.cols, values, layer.weight) + layer.bias

    def latent(self, code: torch.Tensor) -> torch.Tensor:
        return code

    def logits(self, x: torch.Tensor | Rows) -> torch.Tensor:
        """``(B, n_items)`` scores f(z) of binary rows ``x`` (dense or ``Rows``), z the
        encoder's deterministic code (the DAE's, the VAE's posterior mean)."""
        return _run(self.decoder, self.latent(self.encode(x)))

    def batch_loss(self, x: torch.Tensor | Rows, parts: bool = False):
        """The training loss of binary rows ``x`` ``(B, n_items)``, dense or ``Rows``
        (training mode: dropout,
        sampling); with ``parts``, ``(loss, logged)``, ``logged`` the share of it logged as
        ``train/loss`` (watched for divergence)."""
        raise NotImplementedError

    # -- training -------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        seed_rank_stream()  # several processes: each draws its own dropout noise
        seen, dev = self.seen, self.device
        self._indptr = torch.from_numpy(seen.indptr.astype(np.int64)).to(dev)
        self._indices = torch.from_numpy(seen.indices.astype(np.int64)).to(dev)
        self._active = torch.from_numpy(self._users_with_items()).to(dev)

    def _users_with_items(self) -> np.ndarray:
        """The users with training items, the only ones trained on (held-out users of a
        strong-generalization split have empty rows)."""
        return np.flatnonzero(np.diff(self.seen.indptr)).astype(np.int64)

    def steps_per_epoch(self) -> int:
        users = self.n_users if self.seen is None else len(self._users_with_items())
        return max(1, math.ceil(users / self.hparams.batch_users))

    def on_train_epoch_start(self) -> None:
        self._order = self._active[shared_order(len(self._active), self.device)]

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        users = user_batch(batch_idx, self._order, self.hparams.batch_users)
        if len(users) == 0:  # the last round of batches has none left for this process
            return sum(p.sum() for p in self.parameters()) * 0.0
        rows, pos = row_positions(self._indptr, users)
        x = binary_rows(rows, self._indices[pos], len(users), self.n_items)
        loss, watched = self.batch_loss(x, parts=True)
        # the epoch's train/loss: the mean over all trained users (batches weighed by size)
        share = len(users) / len(self._active)
        self.log_train("train/loss", watched.detach() * share, reduce_fx="sum", prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer("adam", self.parameters(), self.hparams.lr)

    def divergence_hint(self) -> str:
        lr = self.hparams.lr
        return f"model.lr={lr:g} is likely too high (try {lr / 10:g})"

    # -- scoring --------------------------------------------------------------------------
    def _rows(self, rows, cols, n_users: int) -> Rows:
        """``Rows`` on the model's device of the binary rows with ones at (rows, cols)."""
        dev = self.device
        return binary_rows(rows.to(dev, torch.int64), cols.to(dev, torch.int64), n_users,
                           self.n_items)  # fmt: skip

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Logits of training users from their (binary) training rows."""
        rows, cols, _ = row_entries(self.seen, users.cpu().numpy())
        return self.logits(self._rows(torch.from_numpy(rows), torch.from_numpy(cols), len(users)))

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        """Logits of new users from their known items (binary: ``conf`` is not used), as a
        training user with the same items is scored."""
        return self.logits(self._rows(rows, cols, n_users))


def _check(ok: bool, key: str, value, want: str) -> None:
    """ConfigError, one line, unless ``ok``: setting ``key`` got ``value`` but must be ``want``."""
    if not ok:
        raise ConfigError(
            f"{key} must be {want}, got {value!r}: set {key}= on the command line or in the "
            "model's config file"
        )


class MultDAE(_Autoencoder):
    """Mult-DAE: the denoising autoencoder with a multinomial likelihood (``dae_loss``):
    f = decoder(encoder(dropout(x / |x|))), loss 1/B sum_u -sum_i x_ui log softmax(f)_ui
    + lambda sum_W |W|^2 (``regularization`` = lambda).

    Args:
        hidden_dim: width of the hidden layer of encoder and decoder (0: none).
        latent_dim: width of the code.
        dropout: probability of dropping each input entry in training.
        regularization: lambda, the L2 weight on the weight matrices.
        lr: Adam's learning rate.
        batch_users: users per step.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        dropout: float = 0.5,
        regularization: float = 2e-5,
        lr: float = 1e-3,
        batch_users: int = 500,
    ) -> None:
        super().__init__(
            n_users, n_items, hidden_dim, latent_dim, dropout, regularization, lr, batch_users
        )
        self.save_hyperparameters(logger=False)

    def batch_loss(self, x: torch.Tensor | Rows, parts: bool = False):
        """``dae_loss`` of binary rows ``x`` ``(B, n_items)`` (dense or ``Rows``); with
        ``parts``, the pair ``(loss, loss)`` (the loss to log is the loss itself)."""
        x = as_rows(x)
        loss = dae_loss(self.logits(x), x, self.weights(), self.hparams.regularization)
        return (loss, loss) if parts else loss


class MultVAE(_Autoencoder):
    """Mult-VAE (with partial KL regularization, the paper's Mult-VAE^PR; ``vae_loss``): the
    encoder gives q(z | x_u) = N(mu_u, diag exp(logvar_u)); training decodes
    z_u = mu_u + eps exp(logvar_u / 2), eps ~ N(0, I), and minimizes
    1/B sum_u [-sum_i x_ui log softmax(f(z_u))_i + beta_t KL(q(z | x_u) || N(0, I))]
    + lambda sum_W |W|^2, beta_t = min(anneal_cap, t / total_anneal_steps) at step t
    (the global step, so that it survives a resumed run). Scores decode the mean mu_u.
    Logged per epoch: ``train/loss`` (the likelihood and L2 terms, which the divergence
    check watches), ``train/kl`` and ``train/beta``.

    Args:
        hidden_dim, latent_dim, dropout, regularization, lr, batch_users: as ``MultDAE``.
        anneal_cap: the largest beta.
        total_anneal_steps: steps for beta to grow from 0 by 1 (0: beta = cap throughout).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        dropout: float = 0.5,
        regularization: float = 0.0,
        lr: float = 1e-3,
        batch_users: int = 500,
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 200_000,
    ) -> None:
        _check(anneal_cap >= 0, "model.anneal_cap", anneal_cap, ">= 0")
        _check(total_anneal_steps >= 0, "model.total_anneal_steps", total_anneal_steps, ">= 0")
        super().__init__(
            n_users, n_items, hidden_dim, latent_dim, dropout, regularization, lr, batch_users
        )
        self.save_hyperparameters(logger=False)

    def code_dims(self, latent_dim: int) -> int:
        return 2 * latent_dim  # mean and log-variance

    def split_code(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each ``(B, latent_dim)``, from the encoder's output."""
        return code.chunk(2, dim=1)

    def latent(self, code: torch.Tensor) -> torch.Tensor:
        return self.split_code(code)[0]

    def beta(self) -> float:
        h = self.hparams
        return anneal_beta(self.global_step, h.anneal_cap, h.total_anneal_steps)

    def batch_loss(
        self,
        x: torch.Tensor | Rows,
        eps: torch.Tensor | None = None,
        beta: float | None = None,
        parts: bool = False,
    ):
        """``vae_loss`` of binary rows ``x`` ``(B, n_items)`` (dense or ``Rows``), with noise
        ``eps`` ``(B, latent_dim)`` (drawn when None) and ``beta`` (the annealed one when
        None). With ``parts``, ``(loss, nll + L2)``: ``train/loss`` leaves out beta KL, whose
        weight grows by design (a rising annealed objective is no divergence); ``train/kl``
        and ``train/beta`` are logged beside it."""
        x = as_rows(x)
        mu, logvar = self.split_code(self.encode(x))
        if eps is None:
            eps = torch.randn_like(mu)
        logits = _run(self.decoder, mu + eps * torch.exp(0.5 * logvar))
        beta = self.beta() if beta is None else beta
        h = self.hparams
        if not parts:
            return vae_loss(logits, x, mu, logvar, beta, self.weights(), h.regularization)
        watched = dae_loss(logits, x, self.weights(), h.regularization)
        kl = gaussian_kl(mu, logvar)
        self.log_train("train/kl", kl.detach())
        self.log_train("train/beta", beta)
        return watched + beta * kl, watched
