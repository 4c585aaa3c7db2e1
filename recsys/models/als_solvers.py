"""Half-steps of implicit ALS (Hu, Koren & Volinsky 2008), in PyTorch, on any device.

Rows are the side being solved (users in the user step, items in the item step), "other" the
fixed side. For row u with observed columns I_u, confidences c_ui >= 1, and unobserved weight
alpha0, the objective is

    sum_{i in I_u} c_ui (p_ui - x_u . y_i)^2 + alpha0 sum_{i not in I_u} (x_u . y_i)^2
        + lambda_u |x_u|^2,

with target p_ui = 1 (or the ``target`` of the CSR: 1 / theta_i under Rel-MF), whose
minimizer solves the normal equations  A_u x_u = b_u  with

    A_u = alpha0 Y^T Y + sum_{i in I_u} (c_ui - alpha0) y_i y_i^T + lambda_u I,
    b_u = sum_{i in I_u} c_ui p_ui y_i,

and lambda_u = lambda * (n_u + alpha0 * n_other)^nu  (nu = 0: plain lambda; frequency-scaled
regularization as in Rendle et al. 2022 otherwise). Work runs over chunks of rows whose
observed entries fit a memory budget, never a dense rows x other matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


@dataclass
class TorchCSR:
    """A CSR matrix as tensors on a device, plus a CPU copy of ``indptr`` for chunking."""

    indptr: torch.Tensor  # (n_rows + 1,) int64
    indices: torch.Tensor  # (nnz,) int32 (int64 past 2^31 columns)
    data: torch.Tensor  # (nnz,) float
    shape: tuple[int, int]
    indptr_cpu: np.ndarray
    target: torch.Tensor | None = None  # (nnz,) observed targets p_ui; None: all 1

    @classmethod
    def from_scipy(
        cls, m: sp.csr_matrix, device=None, dtype: torch.dtype = torch.float32
    ) -> TorchCSR:
        m = m.tocsr()
        m.sort_indices()
        indptr = np.asarray(m.indptr, dtype=np.int64)
        index_type = np.int32 if m.shape[1] <= np.iinfo(np.int32).max else np.int64
        return cls(
            torch.from_numpy(indptr).to(device),
            torch.from_numpy(np.asarray(m.indices, dtype=index_type)).to(device),
            torch.from_numpy(np.asarray(m.data)).to(device=device, dtype=dtype),
            m.shape,
            indptr,
        )

    @classmethod
    def from_entries(
        cls, rows: torch.Tensor, cols: torch.Tensor, conf: torch.Tensor, shape, like: torch.Tensor
    ) -> TorchCSR:
        """From entries (``rows`` ascending), on ``like``'s device and in its dtype."""
        counts = torch.bincount(rows.cpu(), minlength=shape[0]).numpy()
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            torch.from_numpy(indptr).to(like.device),
            cols.to(device=like.device, dtype=torch.int64),
            conf.to(device=like.device, dtype=like.dtype),
            tuple(shape),
            indptr,
        )

    def row_slice(self, r0: int, r1: int) -> TorchCSR:
        """Rows ``r0:r1`` as their own ``(r1 - r0, n_cols)`` matrix (views, no copies)."""
        p0, p1 = int(self.indptr_cpu[r0]), int(self.indptr_cpu[r1])
        return TorchCSR(
            self.indptr[r0 : r1 + 1] - p0,
            self.indices[p0:p1],
            self.data[p0:p1],
            (r1 - r0, self.shape[1]),
            self.indptr_cpu[r0 : r1 + 1] - p0,
            None if self.target is None else self.target[p0:p1],
        )

    @property
    def counts(self) -> torch.Tensor:
        """``(n_rows,)`` number of stored entries per row."""
        return self.indptr[1:] - self.indptr[:-1]

    def chunks(self, max_nnz: int, max_rows: int) -> Iterator[tuple[int, int, int, int]]:
        """``(r0, r1, p0, p1)``: row ranges with at most ``max_nnz`` entries and ``max_rows``
        rows each (a single row with more entries gets a chunk of its own)."""
        n = self.shape[0]
        ip = self.indptr_cpu
        r0 = 0
        while r0 < n:
            r1 = int(np.searchsorted(ip, ip[r0] + max_nnz, side="right")) - 1
            r1 = max(min(r1, r0 + max_rows, n), r0 + 1)
            yield r0, r1, int(ip[r0]), int(ip[r1])
            r0 = r1


def row_regularization(
    counts: torch.Tensor,
    n_other: int,
    regularization: float,
    alpha0: float,
    nu: float,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``(n_rows,)`` lambda_u = lambda * (n_u + alpha0 * n_other)^nu."""
    lam = regularization * (counts.double() + alpha0 * n_other).pow(nu)
    return lam.to(dtype)


def solve_cholesky(
    csr: TorchCSR,
    other: torch.Tensor,
    reg: torch.Tensor,
    alpha0: float,
    budget: int = 1 << 24,
    gram: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact solution of every row's normal equations (batched Cholesky).

    Args:
        csr: ``(n_rows, n_other)`` confidences of observed entries.
        other: ``(n_other, k)`` fixed factors.
        reg: ``(n_rows,)`` per-row lambda.
        alpha0: weight of unobserved entries.
        budget: elements of the largest temporary tensor.
        gram: ``other^T other`` ``(k, k)`` when known (e.g. all-reduced across processes).

    Returns:
        ``(n_rows, k)`` new factors, in ``other``'s dtype and device.
    """
    k = other.shape[1]
    gram = alpha0 * (other.T @ other if gram is None else gram)
    out = torch.empty((csr.shape[0], k), dtype=other.dtype, device=other.device)
    for rows, y, c, cp in _padded_rows(csr, other, budget // k, max(1, budget // (k * k))):
        a = torch.baddbmm(gram.expand(len(rows), k, k), (y * (c - alpha0).unsqueeze(2)).mT, y)
        a.diagonal(dim1=1, dim2=2).add_(reg[rows, None].to(other.dtype))
        b = torch.bmm(y.mT, cp.unsqueeze(2))
        chol, info = torch.linalg.cholesky_ex(a)
        if bool((info > 0).any()):
            raise FloatingPointError(
                "ALS normal equations are not positive definite; use a regularization > 0"
            )
        out[rows] = torch.cholesky_solve(b, chol)[:, :, 0]
    return out


def solve_cg(
    csr: TorchCSR,
    other: torch.Tensor,
    current: torch.Tensor,
    reg: torch.Tensor,
    alpha0: float,
    steps: int = 3,
    budget: int = 1 << 24,
    in_place: bool = False,
    gram: torch.Tensor | None = None,
) -> torch.Tensor:
    """Conjugate-gradient steps on every row's normal equations, warm-started from ``current``.

    Matrix-free: ``A_u v = alpha0 Y^T Y v + lambda_u v + sum_i (c_ui - alpha0)(y_i . v) y_i``.
    Same arguments as ``solve_cholesky``, plus ``current`` ``(n_rows, k)``, ``steps``, and
    ``in_place``: write the result into ``current`` (no copy of the factors) and return it.
    """
    k = other.shape[1]
    gram = alpha0 * (other.T @ other if gram is None else gram)
    out = current if in_place else current.clone()
    if other.device.type == "cpu" and other.dtype == torch.float32:
        return _solve_cg_cpu(csr, other, out, gram, reg, alpha0, steps)
    for rows, y, c, cp in _padded_rows(csr, other, budget // k, budget // k):
        w = (c - alpha0).unsqueeze(2)
        lam = reg[rows, None].to(other.dtype)

        def matvec(v: torch.Tensor, y=y, w=w, lam=lam) -> torch.Tensor:
            # (multiply-and-sum beats bmm with a vector on CPU)
            t = (y * v.unsqueeze(1)).sum(2, keepdim=True) * w  # (B, L, 1): (c - alpha0) y_i.v
            return torch.addmm(lam * v, v, gram) + (y * t).sum(1)

        x = out[rows]
        r = (y * cp.unsqueeze(2)).sum(1) - matvec(x)
        p = r.clone()
        rs = (r * r).sum(1)
        for _ in range(steps):
            ap = matvec(p)
            denom = (p * ap).sum(1)
            step = torch.where(denom > 0, rs / denom.clamp_min(1e-30), torch.zeros_like(rs))
            x = x + step[:, None] * p
            r = r - step[:, None] * ap
            rs_new = (r * r).sum(1)
            beta = torch.where(rs > 0, rs_new / rs.clamp_min(1e-30), torch.zeros_like(rs))
            p = r + beta[:, None] * p
            rs = rs_new
        out[rows] = x
    return out


def _solve_cg_cpu(csr, other, out, gram, reg, alpha0, steps):
    """``solve_cg`` on the CPU in float32: the row-by-row kernel ``als_cpu.cg_rows``."""
    from recsys.models.als_cpu import cg_rows

    f32 = np.float32
    target = np.empty(0, f32) if csr.target is None else csr.target.numpy().astype(f32, copy=False)
    cg_rows(
        csr.indptr.numpy(),
        csr.indices.numpy(),
        csr.data.numpy().astype(f32, copy=False),
        target,
        out.numpy(),
        other.contiguous().numpy(),
        gram.contiguous().numpy(),
        reg.numpy().astype(f32, copy=False),
        f32(alpha0),
        steps,
    )
    return out


def _observed_loss_cpu(csr: TorchCSR, x: torch.Tensor, y: torch.Tensor, alpha0: float) -> float:
    """The observed pairs' share of ``als_loss`` on the CPU: the kernel
    ``als_cpu.observed_loss``, float64 sums over float32 factors."""
    from recsys.models.als_cpu import observed_loss

    target = np.empty(0) if csr.target is None else csr.target.numpy()
    return observed_loss(
        csr.indptr.numpy(),
        csr.indices.numpy(),
        csr.data.numpy(),
        target,
        x.contiguous().numpy(),
        y.contiguous().numpy(),
        float(alpha0),
    )


def _padded_rows(
    csr: TorchCSR, other: torch.Tensor, max_elems: int, max_rows: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Rows in batches of similar length, padded: ``(rows, y, c, cp)`` with ``rows``
    ``(B,)``, ``y`` ``(B, L, k)`` the other-factors of each row's entries, ``c`` ``(B, L)``
    their confidences and ``cp`` confidence times target (``c`` itself without targets), all
    zero in the padding. Rows are sorted by length, so padding is small;
    each batch keeps ``B * L <= max_elems`` (one long row may exceed it alone) and holds rows
    at most ~25% longer than its shortest, so padding is under a fifth of the work."""
    counts = np.diff(csr.indptr_cpu)
    order = np.argsort(counts, kind="stable")
    sorted_counts = counts[order]
    order_t = torch.from_numpy(order).to(other.device)
    n = len(order)
    i = 0
    while i < n:
        longest = int(sorted_counts[i] * 1.25) + 4
        hi = min(n, i + max_rows, int(np.searchsorted(sorted_counts, longest, side="right")))
        while True:  # shrink the batch until B * L fits
            fit = i + max(1, max_elems // max(int(sorted_counts[hi - 1]), 1))
            if fit >= hi:
                break
            hi = fit
        length = max(int(sorted_counts[hi - 1]), 1)
        rows = order_t[i:hi]
        pos = torch.arange(length, device=other.device)
        mask = pos < csr.counts[rows, None]
        idx = torch.where(mask, csr.indptr[rows, None] + pos, 0)
        if csr.indices.numel() == 0:
            idx = torch.zeros_like(idx)
            y = torch.zeros(
                (hi - i, length, other.shape[1]), dtype=other.dtype, device=other.device
            )
            c = torch.zeros((hi - i, length), dtype=other.dtype, device=other.device)
            cp = c
        else:
            y = other[csr.indices[idx]] * mask.unsqueeze(2)
            c = csr.data[idx].to(other.dtype) * mask
            cp = c if csr.target is None else c * csr.target[idx].to(other.dtype)
        yield rows, y, c, cp
        i = hi


def _gather(csr: TorchCSR, other: torch.Tensor, r0: int, r1: int, p0: int, p1: int):
    """Local row index, gathered other-factors, confidences and targets of rows ``r0:r1``."""
    counts = csr.counts[r0:r1]
    rows = torch.repeat_interleave(
        torch.arange(r1 - r0, device=other.device), counts, output_size=p1 - p0
    )
    c = csr.data[p0:p1].to(other.dtype)
    p = torch.ones_like(c) if csr.target is None else csr.target[p0:p1].to(other.dtype)
    return rows, other[csr.indices[p0:p1]], c, p


def als_loss(
    csr: TorchCSR,
    x: torch.Tensor,
    y: torch.Tensor,
    reg_rows: torch.Tensor,
    reg_cols: torch.Tensor,
    alpha0: float,
    budget: int = 1 << 24,
) -> float:
    """The full objective (float64), for rows ``x`` and columns ``y`` of ``csr``:

    sum_obs c (p - x_u.y_i)^2 + alpha0 sum_unobs (x_u.y_i)^2 + sum_u lambda_u |x_u|^2
    + sum_i lambda_i |y_i|^2, with the unobserved sum taken as alpha0 <X^T X, Y^T Y> minus
    the observed pairs' share, so it costs O(nnz k + (m + n) k^2). The two Gramians are
    products in the factors' own dtype (float32 factors: BLAS in float32, relative error
    of the order of 1e-7 of the loss, at a fifth of the time of float64 copies and products); their
    inner product and every other sum are in float64.
    """
    total = float(alpha0 * ((x.T @ x).double() * (y.T @ y).double()).sum())
    if x.device.type == "cpu" and x.dtype == torch.float32 and y.dtype == torch.float32:
        from recsys.models.als_cpu import weighted_squares

        total += _observed_loss_cpu(csr, x, y, alpha0)
        total += weighted_squares(x.contiguous().numpy(), reg_rows.double().numpy())
        return total + weighted_squares(y.contiguous().numpy(), reg_cols.double().numpy())
    k = x.shape[1]
    xd, yd = x.double(), y.double()
    for r0, r1, p0, p1 in csr.chunks(max(1, budget // k), budget):
        rows, yy, c, p = _gather(csr, yd, r0, r1, p0, p1)
        pred = (xd[r0:r1][rows] * yy).sum(1)
        total += float((c * (p - pred) ** 2 - alpha0 * pred**2).sum())
    total += float((reg_rows.double() * (xd * xd).sum(1)).sum())
    total += float((reg_cols.double() * (yd * yd).sum(1)).sum())
    return total
