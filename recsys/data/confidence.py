"""Confidence: how strongly an observed interaction counts, from its raw strength.

One convention for every model. For an observed pair (u, i) with raw strength r > 0, the
confidence is

    c = 1 + alpha * g(r),   with g(r) = 1 (binary), r (linear) or log(1 + r / eps) (log).

The preference of an observed pair is 1. Unobserved pairs have preference 0 and the weight
``alpha0`` of the model (default 1), as in Hu, Koren & Volinsky (2008). With alpha0 = 1 this
is exactly the loss of ``implicit``'s ALS fed the matrix of c values.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Confidence:
    """Maps raw strengths r > 0 to confidences c >= 1 (elementwise, float32)."""

    def g(self, r: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha < 0:
            raise ValueError(f"confidence alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, dtype=np.float64)
        return (1.0 + self.alpha * self.g(r)).astype(np.float32)

    def matrix(self, strengths: sp.csr_matrix) -> sp.csr_matrix:
        """The confidence matrix: same sparsity as ``strengths``, data replaced by c."""
        out = strengths.copy().astype(np.float32)
        out.data = self(strengths.data)
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Binary(Confidence):
    """c = 1 + alpha for every observed pair, whatever its strength."""

    def g(self, r: np.ndarray) -> np.ndarray:
        return np.ones_like(r)


class Linear(Confidence):
    """c = 1 + alpha * r (Hu et al. 2008, eq. 2)."""

    def g(self, r: np.ndarray) -> np.ndarray:
        return r


class Log(Confidence):
    """c = 1 + alpha * log(1 + r / eps) (Hu et al. 2008, eq. 6)."""

    def __init__(self, alpha: float = 1.0, eps: float = 1.0) -> None:
        super().__init__(alpha)
        if eps <= 0:
            raise ValueError(f"confidence eps must be > 0, got {eps}")
        self.eps = float(eps)

    def g(self, r: np.ndarray) -> np.ndarray:
        return np.log1p(r / self.eps)
