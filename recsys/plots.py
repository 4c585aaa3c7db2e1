"""Figures (matplotlib's object API, no global state, no display): a comparison of runs
(``comparison_figure``), a sweep's history, parameter importances and parallel coordinates
(``sweep_figures``), and a run's metrics against k and the popularity of what it recommends
(``metrics_at_k_figure``, ``popularity_figure``). ``save_figure`` writes one atomically, the
format from the file's suffix. matplotlib is imported by the first figure drawn, not by
importing this module (0.5 s of a console script's start otherwise)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.errors import RecsysError
from recsys.files import write_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def _new(**options) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**options)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """``fig`` into ``path`` (.png, .svg or .pdf), atomically."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RecsysError(f"{path}: a figure is written as .png, .svg or .pdf, not {path.suffix!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight")
    return write_atomically(path, lambda tmp: tmp.write_bytes(buf.getvalue()))


def png_array(fig: Figure) -> np.ndarray:
    """``(height, width, 3)`` uint8 RGB pixels of ``fig`` (for TensorBoard's ``add_image``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def comparison_figure(table: pd.DataFrame, baseline: str, level: float) -> Figure:
    """For each metric of ``recsys-compare``'s table (columns ``compare.COLUMNS``), a row of
    two panels: each run's mean with its bootstrap interval, and a forest plot of each run's
    paired difference to ``baseline`` with its interval (the dashed line: no difference)."""
    metrics = list(dict.fromkeys(table["metric"]))
    runs = list(dict.fromkeys(table["run"]))
    fig = _new(figsize=(10, 0.5 + (0.45 * len(runs) + 0.9) * len(metrics)))
    axes = fig.subplots(len(metrics), 2, squeeze=False)
    pct = f"{level:.0%}"
    for (left, right), metric in zip(axes, metrics):
        rows = table[table["metric"] == metric].set_index("run").loc[runs]
        y = np.arange(len(runs))[::-1]
        left.errorbar(rows["mean"], y, xerr=[rows["mean"] - rows["ci_low"],
                      rows["ci_high"] - rows["mean"]], fmt="o", capsize=3)  # fmt: skip
        left.set_yticks(y, runs)
        left.set_title(f"{metric}: mean [{pct} CI]")
        others = rows.drop(index=baseline)
        yo = y[[runs.index(r) for r in others.index]]
        right.errorbar(others["diff"], yo, xerr=[others["diff"] - others["diff_ci_low"],
                       others["diff_ci_high"] - others["diff"]], fmt="s", capsize=3,
                       color="tab:orange")  # fmt: skip
        right.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        right.set_yticks(y, runs)
        right.set_ylim(left.get_ylim())
        right.set_title(f"{metric}: difference to {baseline} [{pct} CI]")
    fig.tight_layout()
    return fig


def sweep_figures(
    trials: pd.DataFrame, metric: str, importances: dict[str, float], maximize: bool = True
) -> dict[str, Figure]:
    """``{file name: Figure}`` of a sweep from its ``trials.csv`` frame (``number``, ``state``,
    ``value``, ``params_<name>``...; ``maximize``: higher values are better): the history
    (each finished trial's value and the best so far), the parameter importances given (name
    -> share; none: left out) and parallel coordinates (each parameter scaled to [0, 1],
    categories by their order of appearance; a line per finished trial, coloured by value)."""
    done = trials[trials["value"].notna()].sort_values("number")
    if done.empty:
        return {}
    out = {}
    fig = _new(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(done["number"], done["value"], "o", label="trial", alpha=0.7)
    best = done["value"].cummax() if maximize else done["value"].cummin()
    ax.plot(done["number"], best, "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend()
    ax.set_title("optimization history")
    out["optimization_history.png"] = fig

    if importances:
        names = sorted(importances, key=importances.get)
        fig = _new(figsize=(7, 0.8 + 0.4 * len(names)))
        ax = fig.subplots()
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel(f"importance for {metric} (Optuna's fANOVA)")
        ax.set_title("parameter importances")
        out["param_importances.png"] = fig

    params = [c for c in done.columns if c.startswith("params_")]
    if params:
        scaled = np.column_stack([_unit(done[c]) for c in params])
        fig = _new(figsize=(1.8 * len(params) + 3, 4))
        ax = fig.subplots()
        values = done["value"].to_numpy(np.float64)
        span = np.ptp(values) or 1.0
        from matplotlib import colormaps

        cmap = colormaps["viridis"]
        for row, value in zip(scaled, values):
            ax.plot(range(len(params)), row, color=cmap((value - values.min()) / span), alpha=0.8)
        ax.set_xticks(range(len(params)), [re.sub("^params_", "", c) for c in params])
        ax.set_ylabel("scaled to [0, 1]")
        best = "yellow" if maximize else "purple"
        ax.set_title(f"parallel coordinates (colour: {metric}, {best} best)")
        out["parallel_coordinates.png"] = fig
    return out


def _unit(column: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        x = numeric.to_numpy(np.float64)
    else:  # categories: their order of appearance
        x = pd.factorize(column.astype(str))[0].astype(np.float64)
    span = np.ptp(x)
    return (x - x.min()) / span if span > 0 else np.full(len(x), 0.5)


def metrics_at_k_figure(metrics: dict[str, float], stage: str = "test") -> Figure | None:
    """Recall and NDCG (and the other ranking metrics there are) against the cut-off k, from
    metrics named ``<stage>/<metric>@<k>``; None when there are none."""
    found: dict[str, dict[int, float]] = {}
    for name, value in metrics.items():
        m = re.fullmatch(rf"{re.escape(stage)}/([a-z_]+)@(\d+)", name)
        if m and m.group(1) != "coverage":
            found.setdefault(m.group(1), {})[int(m.group(2))] = value
    if not found:
        return None
    fig = _new(figsize=(6, 4))
    ax = fig.subplots()
    for metric in sorted(found, key=lambda n: (n not in ("recall", "ndcg"), n)):
        ks = sorted(found[metric])
        ax.plot(ks, [found[metric][k] for k in ks], "o-", label=metric)
    ax.set_xlabel("k (cut-off)")
    ax.set_ylabel(f"{stage} metric")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(f"{stage} metrics against k")
    return fig


def popularity_figure(item_counts: np.ndarray, recommended: np.ndarray) -> Figure:
    """How popular the recommended items are against the catalogue: the share of items
    (catalogue: every item once; recommended: every recommendation slot) whose training
    count is at most x, x on a log scale. ``item_counts`` ``(n_items,)`` training
    interactions per item; ``recommended`` item indices (any shape; -1 = empty slot)."""
    rec = recommended[recommended >= 0].ravel()
    fig = _new(figsize=(6, 4))
    ax = fig.subplots()
    for label, counts in (("catalogue", item_counts), ("recommended", item_counts[rec])):
        x = np.sort(counts.astype(np.float64)) + 1.0
        ax.step(x, np.arange(1, len(x) + 1) / max(len(x), 1), where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training interactions of the item + 1")
    ax.set_ylabel("share with at most x")
    ax.legend()
    ax.set_title("popularity of recommended items against the catalogue")
    return fig
