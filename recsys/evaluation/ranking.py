"""Top-k selection with a deterministic tie rule, on the scores' device."""

from __future__ import annotations

import torch

_LOW31 = 0x7FFFFFFF


def topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best items of each row of ``scores`` ``(B, n_items)``.

    Items are ordered by score, descending; equal scores are ordered by item index, ascending,
    so the result never depends on the backend. ``-inf`` marks excluded items: they come last,
    and the returned ``valid`` mask is False where a row had fewer than k other items.

    One float top-(k+1) finds each row's k best; only rows whose (k+1)-th score equals the
    k-th (a tie across the border) are ranked again by the exact (score, index) key over all
    their items.

    Returns:
        ``(items, valid)``: ``(B, k)`` int64 item indices and a ``(B, k)`` bool mask.
    """
    n = scores.shape[1]
    k = min(k, n)
    s = scores if scores.dtype == torch.float32 else scores.float()
    values, items = torch.topk(s, min(k + 1, n), dim=1, largest=True, sorted=True)
    if torch.isnan(values).any():  # topk ranks NaN above every number
        raise FloatingPointError("the model produced NaN scores")
    # a row is tied at the border when its (k+1)-th best score equals its k-th
    if n > k:
        border = values[:, k - 1] == values[:, k]
    else:
        border = torch.zeros(len(values), dtype=torch.bool, device=values.device)
    values, items = values[:, :k], items[:, :k]
    # order within the k by the exact key (ties by index), then redo the rows tied at the border
    order = torch.argsort(_keys(values, items, n), dim=1, descending=True)
    items = torch.gather(items, 1, order)
    values = torch.gather(values, 1, order)
    if bool(border.any()):
        rows = torch.nonzero(border).squeeze(1)
        full = s[rows]
        idx = torch.arange(n, device=s.device).expand_as(full)
        _, pick = torch.topk(_keys(full, idx, n), k, dim=1, largest=True, sorted=True)
        items[rows] = pick
        values[rows] = torch.gather(full, 1, pick)
    return items, values > float("-inf")


def _keys(values: torch.Tensor, items: torch.Tensor, n: int) -> torch.Tensor:
    """int64 keys that sort like (score descending, item index ascending): the float's bits
    mapped to an int32 that sorts like the float (-0.0 as +0.0), then the reversed item index
    in the low 32 bits."""
    bits = (values + 0.0).view(torch.int32).to(torch.int64)
    key = torch.where(bits >= 0, bits, bits ^ _LOW31)
    return key * (1 << 32) + (n - 1 - items)
