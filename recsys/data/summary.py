"""A dataset's vital statistics, printed once per run and logged to TensorBoard as text."""

from __future__ import annotations

import numpy as np

from recsys.data.interactions import Interactions


def gini(x: np.ndarray) -> float:
    """Gini index of non-negative values: 0 when all equal, -> 1 when one holds everything.
    G = sum_i (2i - n - 1) x_(i) / (n sum_i x_i), x sorted ascending, i = 1..n."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def summarize(data: Interactions) -> dict[str, float]:
    """Users, items, interactions, density, per-user and per-item interaction quantiles,
    item-popularity Gini and the share of interactions on the top 1% of items."""
    per_user = np.diff(data.matrix.indptr)
    per_item = np.bincount(data.matrix.indices, minlength=data.n_items)
    out: dict[str, float] = {
        "users": data.n_users,
        "items": data.n_items,
        "interactions": data.nnz,
        "density": data.nnz / max(data.n_users * data.n_items, 1),
    }
    for name, counts in (("user", per_user), ("item", per_item)):
        for q in (0, 25, 50, 75, 90, 100):
            label = {0: "min", 100: "max"}.get(q, f"p{q}")
            out[f"per_{name}_{label}"] = float(np.percentile(counts, q)) if len(counts) else 0.0
        out[f"per_{name}_mean"] = float(counts.mean()) if len(counts) else 0.0
    top = max(1, int(np.ceil(0.01 * data.n_items)))
    out["item_gini"] = gini(per_item)
    out["top1pct_items_share"] = float(np.sort(per_item)[::-1][:top].sum() / max(data.nnz, 1))
    return out


def format_summary(summary: dict[str, float], parts: dict[str, int] | None = None) -> str:
    """A Markdown table of ``summarize``'s output (and the split's part sizes)."""
    lines = ["| statistic | value |", "|---|---|"]
    for key, value in summary.items():
        shown = (
            f"{value:.6g}"
            if isinstance(value, float) and not value.is_integer()
            else (f"{int(value):,}")
        )
        lines.append(f"| {key} | {shown} |")
    for name, n in (parts or {}).items():
        lines.append(f"| {name} interactions | {n:,} |")
    return "\n".join(lines)
