"""GRU4Rec: recurrent next-item recommendation (Hidasi et al. 2016; the BPR-max loss of
Hidasi & Karatzoglou 2018)."""

from __future__ import annotations

import torch
from torch import nn

from recsys.models.sequential import SequentialModel


class GRU4Rec(SequentialModel):
    """A GRU over each user's item sequence (left-aligned windows, padding last; see
    ``recsys.models.sequential``): x_t = dropout(E_in[s_t]), g_t = GRU(x_t, g_{t-1}) (g_0 = 0,
    ``layers`` stacked), h_t = dropout(g_t); the next item's score r_t(j) = h_t . E_out[j] + b_j
    (E_out = E_in with ``tied``). Padding comes after the items, so h_t never sees it.

    Sequences are a user's whole training history rather than the paper's sessions
    (session-parallel mini-batches become one padded window per user, last ``max_len``
    items).

    Loss (``loss``): ``ce`` (default): the mean over positions t with an item and a next
    item of -log softmax_j r_t(j)[s_{t+1}] over all items (the reference code's
    cross-entropy, here without sampling); ``bpr_max``: -log sum_j s_j sigmoid(r_i - r_j) +
    ``bpr_max_reg`` sum_j s_j r_j^2 over ``n_negatives`` uniform negatives shared by the
    batch, s = softmax over the negatives' scores (Hidasi & Karatzoglou 2018); ``bce``:
    SASRec's, one negative per position.

    Args:
        hidden: GRU units (= embedding size; paper: 100).
        layers: stacked GRU layers (paper: 1).
        dropout: dropout on the GRU's input and output (reference: 0 to 0.5).
        tied: one embedding table for inputs and outputs (the reference's
            ``constrained_embedding``).
        max_len: the window (the last items of each user) scored and trained on.
        loss: ``ce`` | ``bpr_max`` | ``bce``; bpr_max_reg: the BPR-max score regularization.
        lr, optimizer, weight_decay, batch_size, n_negatives: training.
    """

    align = "left"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        hidden: int = 100,
        layers: int = 1,
        dropout: float = 0.2,
        tied: bool = True,
        max_len: int = 50,
        loss: str = "ce",
        bpr_max_reg: float = 1.0,
        lr: float = 0.001,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        batch_size: int = 128,
        n_negatives: int = 512,
    ) -> None:
        super().__init__(
            n_users, n_items, max_len, loss, lr, optimizer, weight_decay, batch_size, n_negatives
        )
        self.save_hyperparameters(logger=False)
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.out_emb = None if tied else nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.out_bias = nn.Parameter(torch.zeros(n_items + 1))
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.item_emb.weight[1:], std=hidden**-0.5)
        if self.out_emb is not None:
            nn.init.normal_(self.out_emb.weight[1:], std=hidden**-0.5)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, L, d + 1)`` states [h_t, 1] after each position of windows ``(B, L)`` (the
        constant column meets the output bias)."""
        out, _ = self.gru(self.drop(self.item_emb(tokens)))
        h = self.drop(out)
        return torch.cat([h, torch.ones_like(h[..., :1])], dim=-1)

    def last_hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, d + 1)`` states after each window's last item (zeros with the bias column
        for an empty window: scores are the biases)."""
        n = (tokens > 0).sum(1)
        h = self.hidden(tokens[:, : max(1, int(n.max()))])
        last = h[torch.arange(len(tokens), device=h.device), (n - 1).clamp(min=0)]
        return torch.where((n > 0).unsqueeze(1), last, torch.eye(h.shape[-1])[-1].to(h))

    def output_embeddings(self) -> torch.Tensor:
        """``(n_items + 1, d + 1)``: [E_out, b]."""
        emb = (self.item_emb if self.out_emb is None else self.out_emb).weight
        return torch.cat([emb, self.out_bias.unsqueeze(1)], dim=1)
