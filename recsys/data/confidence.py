"""Confidence: how strongly an observed interaction counts.

One convention for every model. An observed pair (u, i) has preference 1 and confidence

    c_ui = 1 + alpha * g_ui,   g_ui >= 0,

where ``g`` is a weighting of the pair's raw strength r (or of its event features). Unobserved
pairs have preference 0 and the weight ``alpha0`` of the model (default 1), as in Hu, Koren &
Volinsky (2008); with alpha0 = 1 this is exactly the loss of ``implicit``'s ALS fed the matrix
of c values.

Weightings that need statistics of the data (bm25, tfidf) take them from the training part
(``fit``) and apply them to any part (``matrix``), so held-out data never leaks into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp

from recsys.data.interactions import Interactions
from recsys.errors import RecsysError


class Confidence:
    """Base class: ``g`` maps a part's interactions to ``(nnz,)`` weights >= 0.

    A confidence's arguments are its public attributes; what ``fit`` learns from the training
    part lives in the attributes named by ``fitted``. Both travel in checkpoints (``state``,
    ``from_state``), so that a new user's history is weighted as training was."""

    fitted: tuple[str, ...] = ()
    features_used: tuple[str, ...] = ()  # per-pair features g reads (NaN: unknown)

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha < 0:
            raise ValueError(f"confidence alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def fit(self, train: Interactions) -> Confidence:
        """Learn data statistics from the training part (most weightings need none)."""
        return self

    # -- saved with a model -----------------------------------------------------------------
    def state(self) -> dict:
        """``{"class", "params", "fitted"}``: what rebuilds this fitted confidence (arrays as
        float64 tensors, so that checkpoints load with ``weights_only``)."""
        import torch

        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        fitted = {}
        for name in self.fitted:
            value = getattr(self, name, None)
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(np.asarray(value, dtype=np.float64))
            fitted[name] = value
        cls = type(self)
        return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": params, "fitted": fitted}

    @staticmethod
    def from_state(state: dict) -> Confidence:
        """The fitted confidence saved by ``state`` (its class must be a trusted Confidence:
        ``recsys.registry``)."""
        from recsys.registry import resolve_class

        cls = resolve_class(state["class"], Confidence, what="confidence")
        out = cls(**state["params"])
        for name in cls.fitted:
            value = state["fitted"].get(name)
            setattr(out, name, value.numpy() if hasattr(value, "numpy") else value)
        return out

    def values_of_histories(
        self,
        item_ids: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        strengths: np.ndarray,
        features: Mapping[str, np.ndarray] | None = None,
        n_users: int | None = None,
    ) -> np.ndarray:
        """Confidences ``(len(cols),)`` of new users' histories, each computed as for a
        training user with exactly these items: entry j says user ``rows[j]`` (0..n_users-1)
        has column ``cols[j]`` of the catalogue ``item_ids`` with raw strength ``strengths[j]``
        and per-pair ``features`` (e.g. ``dwell``); (row, col) pairs distinct. Returned in the
        order of the entries."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        n_users = int(rows.max()) + 1 if n_users is None and len(rows) else int(n_users or 1)
        order = np.lexsort((cols, rows))
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_users))]
        matrix = sp.csr_matrix(
            (np.asarray(strengths, dtype=np.float32)[order], cols[order], indptr),
            shape=(n_users, len(item_ids)),
        )
        feats = {k: np.asarray(v, dtype=np.float64)[order] for k, v in (features or {}).items()}
        part = Interactions(matrix, np.arange(n_users), np.asarray(item_ids), None, feats)
        out = np.empty(len(cols), dtype=np.float32)
        out[order] = self.values(part)
        return out

    def g(self, part: Interactions) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, part: Interactions) -> np.ndarray:
        """``(nnz,)`` float32 confidences of ``part``'s stored entries."""
        return self._confidence(self.g(part))

    def _confidence(self, g: np.ndarray) -> np.ndarray:
        return (1.0 + self.alpha * np.asarray(g, dtype=np.float64)).astype(np.float32)

    def matrix(self, part: Interactions) -> sp.csr_matrix:
        """The confidence matrix: ``part``'s sparsity, data replaced by c."""
        out = part.matrix.copy().astype(np.float32)
        out.data = self.values(part)
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class _Elementwise(Confidence):
    """A weighting of the raw strength alone: g_ui = f(r_ui)."""

    def f(self, r: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def g(self, part: Interactions) -> np.ndarray:
        return self.f(part.matrix.data.astype(np.float64))

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """Confidences of raw strengths ``r`` (float32)."""
        return self._confidence(self.f(np.asarray(r, dtype=np.float64)))


class Binary(_Elementwise):
    """c = 1 + alpha for every observed pair, whatever its strength."""

    def __init__(self, alpha: float = 10.0) -> None:
        super().__init__(alpha)

    def f(self, r: np.ndarray) -> np.ndarray:
        return np.ones_like(r)


class Linear(_Elementwise):
    """c = 1 + alpha * r (Hu et al. 2008, eq. 2)."""

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__(alpha)

    def f(self, r: np.ndarray) -> np.ndarray:
        return r


class Log(_Elementwise):
    """c = 1 + alpha * log(1 + r / eps) (Hu et al. 2008, eq. 6)."""

    def __init__(self, alpha: float = 10.0, eps: float = 1.0) -> None:
        super().__init__(alpha)
        if eps <= 0:
            raise ValueError(f"confidence eps must be > 0, got {eps}")
        self.eps = float(eps)

    def f(self, r: np.ndarray) -> np.ndarray:
        return np.log1p(r / self.eps)


class _ItemIdf(Confidence):
    """Shared by bm25 and tfidf: idf_i = max(0, log(N) - log(1 + n_i)) over training users,
    with N the number of users with at least one training interaction and n_i item i's."""

    _idf: np.ndarray | None = None
    fitted = ("_idf",)

    def fit(self, train: Interactions) -> Confidence:
        n_users = max(int((np.diff(train.matrix.indptr) > 0).sum()), 1)
        n_i = np.bincount(train.matrix.indices, minlength=train.n_items)
        self._idf = np.maximum(np.log(n_users) - np.log1p(n_i), 0.0)
        self._fit_more(train)
        return self

    def _fit_more(self, train: Interactions) -> None:
        pass

    def _require_fit(self) -> np.ndarray:
        if self._idf is None:
            raise RuntimeError(f"{type(self).__name__}.fit(train) must be called first")
        return self._idf


class TfIdf(_ItemIdf):
    """c = 1 + alpha * sqrt(r) * idf_i (as implicit's ``tfidf_weight``)."""

    def g(self, part: Interactions) -> np.ndarray:
        idf = self._require_fit()
        return np.sqrt(part.matrix.data.astype(np.float64)) * idf[part.matrix.indices]


class BM25(_ItemIdf):
    """c = 1 + alpha * r (k1 + 1) / (k1 * L_u + r) * idf_i, with the length norm
    L_u = (1 - b) + b * len_u / mean_len, len_u the user's total strength in the part and
    mean_len the mean over training users with interactions (as implicit's ``bm25_weight``,
    users as rows)."""

    fitted = ("_idf", "_mean_len")

    def __init__(self, alpha: float = 1.0, k1: float = 100.0, b: float = 0.8) -> None:
        super().__init__(alpha)
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError("bm25 needs k1 >= 0 and 0 <= b <= 1")
        self.k1, self.b = float(k1), float(b)

    def _fit_more(self, train: Interactions) -> None:
        lengths = np.asarray(train.matrix.sum(1)).ravel()
        self._mean_len = float(lengths[lengths > 0].mean()) if (lengths > 0).any() else 1.0

    def g(self, part: Interactions) -> np.ndarray:
        idf = self._require_fit()
        m = part.matrix
        r = m.data.astype(np.float64)
        lengths = np.asarray(m.sum(1)).ravel()
        norm = (1 - self.b) + self.b * lengths / self._mean_len
        rows = part.rows()
        return r * (self.k1 + 1) / (self.k1 * norm[rows] + r) * idf[m.indices]


def _feature(part: Interactions, name: str, who: str) -> np.ndarray:
    if name not in part.features:
        have = ", ".join(sorted(part.features)) or "none"
        raise RecsysError(
            f"confidence={who} needs the per-pair feature {name!r}, which this dataset does not "
            f"provide (it has: {have}); use an event log with that column, or another confidence"
        )
    return part.features[name]


class Dwell(Confidence):
    """Dwell-time confidence: g = w(d) of the pair's total dwell seconds d (feature ``dwell``):

    w(d) = unknown_value                  if no dwell is known for the pair,
           bounce_value                   if d < bounce_seconds (a bounce),
           1 - exp(-d / scale_seconds)    otherwise (saturating: a 5-minute read counts
                                          about as much as a 10-minute one).
    """

    features_used = ("dwell",)

    def __init__(
        self,
        alpha: float = 10.0,
        scale_seconds: float = 60.0,
        bounce_seconds: float = 10.0,
        bounce_value: float = 0.05,
        unknown_value: float = 0.5,
    ) -> None:
        super().__init__(alpha)
        if scale_seconds <= 0 or bounce_seconds < 0:
            raise ValueError("dwell needs scale_seconds > 0 and bounce_seconds >= 0")
        self.scale_seconds, self.bounce_seconds = float(scale_seconds), float(bounce_seconds)
        self.bounce_value, self.unknown_value = float(bounce_value), float(unknown_value)

    def g(self, part: Interactions) -> np.ndarray:
        d = _feature(part, "dwell", "dwell").astype(np.float64)
        out = 1.0 - np.exp(-np.nan_to_num(d, nan=0.0) / self.scale_seconds)
        out = np.where(d < self.bounce_seconds, self.bounce_value, out)
        return np.where(np.isnan(d), self.unknown_value, out)


def _views(part: Interactions) -> np.ndarray:
    """The number of views of each pair: feature ``count`` where the part has it, else 1
    (one view per entry, as a session view in the replay)."""
    if "count" in part.features:
        return np.maximum(np.nan_to_num(part.features["count"].astype(np.float64), nan=1.0), 1.0)
    return np.ones(part.nnz)


class DwellPerLength(Confidence):
    """Dwell relative to the article's expected reading time, so that a long piece skimmed
    does not look like engagement and a short piece read in full does not look weak.

    With d the pair's total dwell seconds (feature ``dwell``, summed over its views), n its
    number of views (feature ``count``; 1 where absent), L_i the article's length in words
    (feature ``item_length``) and the expected reading time E_i = L_i / words_per_second,
    the per-view reading ratio is r = (d / n) / E_i (about the share of the article read per
    view) and

    g = unknown_value         if no dwell is known for the pair,
        bounce_value          if d < bounce_seconds (a bounce; the total, as ``Dwell``),
        unknown_value         if the article's length is unknown (or not > 0),
        min(r, cap)           otherwise.

    Per view rather than the total: a pair viewed twice and read halfway each time counts as
    half read, not in full (repeat views come largely from what the site shows again). ``n``
    counts every view, also those whose dwell is unknown, so on a log with missing dwells the
    ratio is a lower bound. ``words_per_second`` is a parameter (4, about 240 words a minute,
    a usual reading speed and the simulator's), not fitted: it only sets where ``cap`` bites.

    ``fit`` stores each training article's length (``_item_length``, by column; NaN for
    articles without training pairs), which ``g`` prefers to the part's ``item_length``, so
    that a new user's history needs only ``dwell`` (and ``count``) per entry; articles not in
    training take the part's ``item_length`` where given."""

    features_used = ("dwell", "item_length")

    fitted = ("_item_length",)
    _item_length: np.ndarray | None = None

    def __init__(
        self,
        alpha: float = 10.0,
        words_per_second: float = 4.0,
        cap: float = 1.0,
        bounce_seconds: float = 10.0,
        bounce_value: float = 0.05,
        unknown_value: float = 0.5,
    ) -> None:
        super().__init__(alpha)
        if words_per_second <= 0 or cap <= 0 or bounce_seconds < 0:
            raise ValueError(
                "dwell_per_length needs words_per_second > 0, cap > 0 and bounce_seconds >= 0"
            )
        self.words_per_second, self.cap = float(words_per_second), float(cap)
        self.bounce_seconds = float(bounce_seconds)
        self.bounce_value, self.unknown_value = float(bounce_value), float(unknown_value)

    def fit(self, train: Interactions) -> Confidence:
        length = _feature(train, "item_length", "dwell_per_length").astype(np.float64)
        known = np.isfinite(length) & (length > 0)
        out = np.full(train.n_items, np.nan)
        out[train.matrix.indices[known]] = length[known]
        self._item_length = out
        return self

    def lengths(self, part: Interactions) -> np.ndarray:
        """``(nnz,)`` article lengths of ``part``'s entries (fitted first, then the part's)."""
        if self._item_length is None:
            raise RuntimeError("DwellPerLength.fit(train) must be called first")
        fitted = np.asarray(self._item_length, dtype=np.float64)[part.matrix.indices]
        if "item_length" in part.features:
            given = part.features["item_length"].astype(np.float64)
            fitted = np.where(np.isnan(fitted), given, fitted)
        return fitted

    def g(self, part: Interactions) -> np.ndarray:
        d = _feature(part, "dwell", "dwell_per_length").astype(np.float64)
        length = self.lengths(part)
        known_length = np.isfinite(length) & (length > 0)
        expected = np.where(known_length, length, 1.0) / self.words_per_second
        ratio = np.nan_to_num(d, nan=0.0) / _views(part) / expected
        out = np.where(known_length, np.minimum(ratio, self.cap), self.unknown_value)
        out = np.where(d < self.bounce_seconds, self.bounce_value, out)
        return np.where(np.isnan(d), self.unknown_value, out)


class DwellQuantile(Confidence):
    """Dwell as a quantile within its article: g = F_i(d), the empirical distribution
    function of the pair's total dwell seconds d (feature ``dwell``) among the training pairs
    of the same article i with a known dwell, with mid-ranks for ties:

    F_i(d) = (#{x in D_i : x < d} + #{x in D_i : x = d} / 2) / |D_i|,

    where D_i are article i's training dwells if it has at least ``min_count`` of them, else
    all training pairs' dwells (the global distribution). So a pair counts by how long it was
    read compared with the other readers of that article, whatever the article's length.
    Pairs with no known dwell get ``unknown_value``; bounces (d < ``bounce_seconds``, as
    ``Dwell``) get ``bounce_value`` (bounce_seconds=0: none).

    ``fit`` (training part only) stores the sorted dwells of each article with enough of them
    (``_values``, grouped by column with offsets ``_offsets``) and the global sorted dwells
    (``_global``); they travel in checkpoints, so a new user's history (``dwell`` per entry)
    is weighted against the training distributions."""

    features_used = ("dwell",)

    fitted = ("_values", "_offsets", "_global")
    _values: np.ndarray | None = None
    _offsets: np.ndarray | None = None
    _global: np.ndarray | None = None

    def __init__(
        self,
        alpha: float = 10.0,
        min_count: int = 10,
        bounce_seconds: float = 10.0,
        bounce_value: float = 0.05,
        unknown_value: float = 0.5,
    ) -> None:
        super().__init__(alpha)
        if min_count < 1 or bounce_seconds < 0:
            raise ValueError("dwell_quantile needs min_count >= 1 and bounce_seconds >= 0")
        self.min_count, self.bounce_seconds = int(min_count), float(bounce_seconds)
        self.bounce_value, self.unknown_value = float(bounce_value), float(unknown_value)

    def fit(self, train: Interactions) -> Confidence:
        d = _feature(train, "dwell", "dwell_quantile").astype(np.float64)
        known = ~np.isnan(d)
        cols, d = train.matrix.indices[known].astype(np.int64), d[known]
        self._global = np.sort(d)
        counts = np.bincount(cols, minlength=train.n_items)
        own = counts[cols] >= self.min_count
        order = np.lexsort((d[own], cols[own]))
        self._values = d[own][order]
        kept = np.where(counts >= self.min_count, counts, 0)
        self._offsets = np.r_[0, np.cumsum(kept)].astype(np.int64)
        return self

    def g(self, part: Interactions) -> np.ndarray:
        if self._global is None:
            raise RuntimeError("DwellQuantile.fit(train) must be called first")
        d = _feature(part, "dwell", "dwell_quantile").astype(np.float64)
        values = np.asarray(self._values, dtype=np.float64)
        offsets = np.asarray(self._offsets).astype(np.int64)
        cols = part.matrix.indices.astype(np.int64)
        known = ~np.isnan(d)
        out = np.full(part.nnz, self.unknown_value)
        own = known & (offsets[cols + 1] > offsets[cols])
        out[own] = _mid_ecdf(values, offsets, cols[own], d[own])
        pooled = known & ~own
        if pooled.any():
            glob = np.asarray(self._global, dtype=np.float64)
            if len(glob):
                below = np.searchsorted(glob, d[pooled], "left")
                upto = np.searchsorted(glob, d[pooled], "right")
                out[pooled] = (below + upto) / (2.0 * len(glob))
        return np.where(known & (d < self.bounce_seconds), self.bounce_value, out)


def _mid_ecdf(values: np.ndarray, offsets: np.ndarray, cols: np.ndarray, d: np.ndarray):
    """Mid-rank ECDF of each ``d[j]`` within ``values[offsets[c]:offsets[c + 1]]`` (sorted),
    c = ``cols[j]``: one search over (column, value rank) integer keys."""
    grid = np.unique(np.concatenate([values, d]))
    width = len(grid) + 1
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    keys = owner * width + np.searchsorted(grid, values)
    query = cols * width + np.searchsorted(grid, d)
    below = np.searchsorted(keys, query, "left") - offsets[cols]
    upto = np.searchsorted(keys, query, "right") - offsets[cols]
    return (below + upto) / (2.0 * (offsets[cols + 1] - offsets[cols]))


DEFAULT_EVENT_WEIGHTS = MappingProxyType({"view": 1.0, "like": 4.0, "bookmark": 6.0,
                                          "purchase": 10.0})  # fmt: skip


class EventWeights(Confidence):
    """g = sum over event types t of weights[t] * n_t, with n_t the pair's number of events of
    type t (features ``type:<t>``); types without a weight get ``default_weight``. ``weights``
    None means ``DEFAULT_EVENT_WEIGHTS`` (view 1, like 4, bookmark 6, purchase 10)."""

    def __init__(
        self,
        alpha: float = 1.0,
        weights: Mapping[str, float] | None = None,
        default_weight: float = 1.0,
    ) -> None:
        super().__init__(alpha)
        self.weights = dict(DEFAULT_EVENT_WEIGHTS if weights is None else weights)
        self.default_weight = float(default_weight)

    def g(self, part: Interactions) -> np.ndarray:
        types = [k for k in part.features if k.startswith("type:")]
        if not types:
            _feature(part, "type:<event type>", "event_weights")
        total = np.zeros(part.nnz)
        for key in types:
            total += self.weights.get(key[5:], self.default_weight) * part.features[key]
        return total
