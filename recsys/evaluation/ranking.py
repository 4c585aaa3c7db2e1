"""Top-k selection with a deterministic tie rule, on the scores' device."""

from __future__ import annotations

import torch

_LOW31 = 0x7FFFFFFF


def topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best items of each row of ``scores`` ``(B, n_items)``.

    Items are ordered by score, descending; equal scores are ordered by item index, ascending,
    so the result never depends on the backend. ``-inf`` marks excluded items: they come last,
    and the returned ``valid`` mask is False where a row had fewer than k other items.

    Returns:
        ``(items, valid)``: ``(B, k)`` int64 item indices and a ``(B, k)`` bool mask.
    """
    n = scores.shape[1]
    k = min(k, n)
    s = scores.float() + 0.0  # turns -0.0 into +0.0
    if torch.isnan(s).any():
        raise FloatingPointError("the model produced NaN scores")
    # Map floats to int32 keys that sort like the floats, then append the reversed item index
    # in the low 32 bits: one int64 key per item, unique within a row.
    bits = s.view(torch.int32).to(torch.int64)
    key = torch.where(bits >= 0, bits, bits ^ _LOW31)
    idx = torch.arange(n, device=s.device, dtype=torch.int64)
    key = key * (1 << 32) + (n - 1 - idx)
    _, items = torch.topk(key, k, dim=1, largest=True, sorted=True)
    valid = torch.gather(s, 1, items) > float("-inf")
    return items, valid
