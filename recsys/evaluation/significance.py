"""Comparing runs over the same users: paired tests, bootstrap intervals, Holm's correction.

All functions take per-user values of one metric, aligned by user (``(n,)`` arrays).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def paired_t_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test of mean(a - b) = 0 (1.0 when all the
    differences are equal, so that the statistic is undefined)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if len(d) < 2 or np.all(d == d[0]):
        return 1.0 if len(d) < 2 or d[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def wilcoxon_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Wilcoxon's signed-rank test on a - b; users with a zero
    difference are dropped (``zero_method='wilcox'``); 1.0 when none is left."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox").pvalue)


def bootstrap_ci(
    values: np.ndarray, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: users resampled with replacement
    ``resamples`` times (seeded), the (1 - level) / 2 and (1 + level) / 2 quantiles of the
    resampled means. For a difference between runs pass the paired differences."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # bounded memory: 1000 x n at a time
        stop = min(resamples, start + 1000)
        idx = rng.integers(0, len(v), size=(stop - start, len(v)))
        means[start:stop] = v[idx].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_ratio_ci(
    numerators: np.ndarray,
    denominators: np.ndarray,
    level: float = 0.95,
    resamples: int = 2_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of sum(numerators) / sum(denominators) with units (e.g.
    sessions, each with its hits and its steps) resampled with replacement; the difference of
    two such ratios over the same units and denominators: pass the numerators' differences."""
    num = np.asarray(numerators, np.float64)
    den = np.asarray(denominators, np.float64)
    if len(num) == 0 or den.sum() == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(1000, 20_000_000 // len(num)))  # bounded memory: chunk x n indices
    ratios = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, len(num), size=(stop - start, len(num)))
        ratios[start:stop] = num[idx].sum(1) / np.maximum(den[idx].sum(1), 1e-300)
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: with p sorted ascending,
    p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))."""
    p = np.asarray(p_values, np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(adjusted)
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()
