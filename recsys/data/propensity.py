"""Item propensities: theta_i, the probability that a relevant pair (u, i) gets observed.

Popularity bias makes popular items observed more often whatever their relevance; models that
weight by 1 / theta_i (training) and evaluators that weight hits by 1 / theta_i (IPS metrics)
correct for it. Every estimate here depends on the item only, is computed from the training
part (``fit``), and is clipped from below at ``floor`` (the clipping M of Saito et al. 2020):

    theta_i = max(raw_i, floor).

Items with no training interaction have raw_i = 0, so theta_i = floor.
"""

from __future__ import annotations

import numpy as np

from recsys.data.interactions import Interactions


class Propensity:
    """Base class. ``fit(train)`` sets ``theta``: ``(n_items,)`` float64 in [floor, 1]."""

    def __init__(self, floor: float = 1e-3) -> None:
        if not 0.0 < floor <= 1.0:
            raise ValueError(f"propensity floor must be in (0, 1], got {floor}")
        self.floor = float(floor)
        self.theta: np.ndarray | None = None

    def raw(self, counts: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Unclipped propensities from the training counts n_i ``(n_items,)``."""
        raise NotImplementedError

    def fit(self, train: Interactions) -> Propensity:
        counts = item_counts(train)
        self.theta = np.maximum(self.raw(counts), self.floor)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items() if k != "theta")
        return f"{type(self).__name__}({args})"


def item_counts(train: Interactions) -> np.ndarray:
    """n_i: the number of training users of each item, ``(n_items,)`` float64."""
    return np.bincount(train.matrix.indices, minlength=train.n_items).astype(np.float64)


class NoPropensity(Propensity):
    """theta_i = 1 for every item: no correction."""

    def __init__(self) -> None:
        super().__init__(floor=1.0)

    def raw(self, counts: np.ndarray) -> np.ndarray:
        return np.ones_like(counts)


class PopularityPropensity(Propensity):
    """theta_i = (n_i / max_j n_j) ** eta (Saito et al., WSDM 2020; eta = 0.5 there)."""

    def __init__(self, eta: float = 0.5, floor: float = 1e-3) -> None:
        super().__init__(floor)
        if eta < 0:
            raise ValueError(f"propensity eta must be >= 0, got {eta}")
        self.eta = float(eta)

    def raw(self, counts: np.ndarray) -> np.ndarray:
        top = counts.max()
        return (counts / top) ** self.eta if top > 0 else np.ones_like(counts)


class PowerLawPropensity(Propensity):
    """Yang et al. (RecSys 2018): theta_i proportional to n_i ** ((gamma + 1) / 2), gamma the
    exponent of a power law P(n) ~ n ** -gamma fitted to the observed item popularity by
    maximum likelihood (the discrete approximation of Clauset et al. 2009 over items with
    n_i >= n_min); normalised so that the most popular item has theta = 1. The fitted value
    is kept in ``gamma``."""

    def __init__(self, n_min: int = 1, floor: float = 1e-3) -> None:
        super().__init__(floor)
        if n_min < 1:
            raise ValueError(f"propensity n_min must be >= 1, got {n_min}")
        self.n_min = int(n_min)
        self.gamma: float | None = None

    def raw(self, counts: np.ndarray) -> np.ndarray:
        self.gamma = fit_power_law(counts, self.n_min)
        top = counts.max()
        return (counts / top) ** ((self.gamma + 1.0) / 2.0) if top > 0 else np.ones_like(counts)


def fit_power_law(counts: np.ndarray, n_min: int = 1) -> float:
    """MLE of gamma in P(n) ~ n ** -gamma for the counts >= n_min:
    gamma = 1 + N / sum_i ln(n_i / (n_min - 1/2))."""
    tail = counts[counts >= n_min]
    if len(tail) < 2:
        raise ValueError(f"need at least two items with n >= {n_min} to fit a power law")
    return 1.0 + len(tail) / float(np.log(tail / (n_min - 0.5)).sum())
