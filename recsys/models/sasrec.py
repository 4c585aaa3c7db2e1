"""SASRec: self-attentive sequential recommendation (Kang & McAuley 2018)."""

from __future__ import annotations

import torch
from torch import nn

from recsys.models.sequential import SequentialModel


class _Block(nn.Module):
    """One self-attention block as in the reference code: x <- LN(x) + Attn(LN(x), x, x)
    (causal), then x <- FFN(LN(x)) + LN(x), FFN = W2 dropout(ReLU(W1 x)), dropout after each
    sublayer."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(d, eps=1e-8)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm_ffn = nn.LayerNorm(d, eps=1e-8)
        self.ffn = nn.Sequential(
            nn.Linear(d, d), nn.Dropout(dropout), nn.ReLU(), nn.Linear(d, d), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = self.norm_attn(x)
        a, _ = self.attn(q, x, x, attn_mask=mask, need_weights=False)
        x = self.norm_ffn(q + a)
        return x + self.ffn(x)


class SASRec(SequentialModel):
    """Causal self-attention over the last ``max_len`` items (right-aligned windows, padding
    first; see ``recsys.models.sequential``). With E the item embeddings (token 0: padding)
    and P the learned position embeddings, x_t = sqrt(d) E[s_t] + P[t] (0 at padding), then
    ``blocks`` self-attention blocks in which position t attends to the items at positions
    <= t (a padding position to itself only), then a layer norm: h_t. The next item's score
    is r_t(j) = h_t . E[j] (shared embeddings).

    Loss (``loss``): ``bce`` (the paper's): the mean over positions t with an item and a next
    item of -log sigmoid(r_t(s_{t+1})) - log(1 - sigmoid(r_t(j_t))), j_t one uniform random
    item; ``ce``: the mean of -log softmax_j r_t(j)[s_{t+1}] over all items (often
    stronger); ``bpr_max``: see ``recsys.models.sequential.bpr_max_loss``.

    Args:
        hidden: embedding size d (paper: 50).
        blocks, heads: self-attention blocks and heads per block (paper: 2 and 1).
        dropout: dropout rate (paper: 0.2 for MovieLens-1M, 0.5 for sparse data).
        max_len: the window n (paper: 200 for MovieLens-1M, 50 for sparse data).
        loss: ``bce`` | ``ce`` | ``bpr_max``.
        lr, optimizer, weight_decay: training (paper: Adam, 1e-3, no weight decay).
        batch_size: users per step (paper: 128).
        n_negatives: shared negatives of ``bpr_max``.
    """

    align = "right"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        hidden: int = 50,
        blocks: int = 2,
        heads: int = 1,
        dropout: float = 0.2,
        max_len: int = 50,
        loss: str = "bce",
        lr: float = 0.001,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        batch_size: int = 128,
        n_negatives: int = 128,
    ) -> None:
        super().__init__(
            n_users, n_items, max_len, loss, lr, optimizer, weight_decay, batch_size, n_negatives
        )
        if hidden % heads:
            raise ValueError(f"model.hidden ({hidden}) must be a multiple of model.heads ({heads})")
        self.save_hyperparameters(logger=False)
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(hidden, eps=1e-8)
        nn.init.xavier_normal_(self.item_emb.weight[1:])  # the reference's initialization
        nn.init.xavier_normal_(self.pos_emb.weight)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, L, d)`` states h_t of windows ``(B, L)``, L <= max_len (positions counted
        from the window's start, as in training)."""
        length = tokens.shape[1]
        d = self.item_emb.embedding_dim
        present = (tokens > 0).unsqueeze(-1)
        positions = torch.arange(length, device=tokens.device)
        x = self.item_emb(tokens) * d**0.5 + self.pos_emb(positions)
        x = self.emb_dropout(x) * present
        idx = torch.arange(length, device=tokens.device)
        future = idx.unsqueeze(0) > idx.unsqueeze(1)  # (L, L): key after query
        padding = (tokens == 0).unsqueeze(1) & (idx.unsqueeze(0) != idx.unsqueeze(1))
        mask = (future.unsqueeze(0) | padding).repeat_interleave(self.hparams.heads, dim=0)
        for block in self.blocks:
            x = block(x, mask) * present
        return self.norm(x)

    def last_hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hidden(tokens)[:, -1]

    def output_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight
