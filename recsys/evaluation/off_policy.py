"""Off-policy estimates of a new block's clicks from a log with logged exposure propensities.

The log (``impressions``) has one row per (block shown, position): the context columns (by
default ``reader``, ``session``, ``step``; or one ``context`` column), ``position`` (the
0-based slot), ``article``, ``propensity`` and ``clicked`` (0/1). ``propensity`` is the
probability that the *logging* policy put this article at this position in this context:
the marginal probability of the (article, position) pair, not of the whole slate.

The target ("new block") is deterministic: for each logged context c it would have shown the
slate ``t_c = (t_c[0], ..., t_c[k-1])``. The estimand is its expected clicks per block,

    V = E_c[ sum_s E[click | c, article t_c[s] at position s] ],

and ``V / k`` per impression. Under the position-based click model (slot s examined with
probability e_s, an examined article clicked with probability a(reader, article), slots
independent) ``V = E_c[ sum_s e_s a(reader_c, t_c[s]) ]``. What the estimators need is
weaker (the item-position model of Li et al. 2018, "Offline evaluation of ranking policies
with click models"): the click on a slot depends on the context, the article and the
position only, not on the other articles of the slate; and the logging policy puts the
target's article at each position with a positive probability.

Notation: for a logged row r of context c at position s, the weight is
``w_r = 1{t_c[s] = article_r} / propensity_r``; ``n_s`` is the number of contexts with a
logged row at position s (every context when every block fills all k slots, as a
simulator's; for logs with one row per context, as the Open Bandit Dataset's, the contexts
that showed slot s); sums over r run over the rows at position s.

- IPS (per position):   ``V_ips   = sum_s (1 / n_s) sum_r w_r click_r``;
- SNIPS (self-normalised per position): ``V_snips = sum_s sum_r w_r click_r / sum_r w_r``
  (a position whose weights are all 0, i.e. no match, contributes 0, as in IPS);
- DM (direct method, the reward model only): ``V_dm = sum_s (1 / n_s) sum_r r^(c_r, t_c[s], s)``;
- DR (doubly robust):   ``V_dr = sum_s (1 / n_s) sum_r [r^(c_r, t_c[s], s)
  + w_r (click_r - r^(c_r, article_r, s))]``;
- logged (on-policy value of the logging policy): ``sum_s (1 / n_s) sum_r click_r``.

IPS and DR are unbiased when the propensities are right (DR also when they are wrong but the
reward model r^ is right); SNIPS is consistent, with a bias of order 1 / (matches per
position), in exchange for a lower variance. ``E[sum_r w_r] = n_s``: the mean weight per
context at each position (``weight_mean_per_position``) near 1 is a check of the logged
propensities.

The default reward model (``fit_click_model``) is a position-based model fitted on the log
itself: ``r^(c, a, s) = theta_s gamma_a``, one examination factor per position and one
attractiveness per article (shrunk towards the mean for rarely shown articles), ignoring the
reader. It is fitted once on the whole log and not refitted in the bootstrap (its few
parameters make the dependence small for DR, whose residual term corrects the model; DM's
interval, which ignores the model's fitting error, is too narrow: DM is a diagnostic). Any
callable ``frame -> click probabilities`` can take its place.

Intervals: percentile bootstrap (95%) over contexts, or over the values of a ``cluster``
column (e.g. ``reader``: a reader's blocks share the reader's tastes, so resampling readers
gives the honest, wider interval when readers come back). Every estimator is a sum of ratios
of per-unit sums, so each resample sums the units' statistics and recomputes them.

Diagnostics: ``ess_per_position`` is Kish's effective sample size of the weights at each
position, ``(sum_r w_r)^2 / sum_r w_r^2`` (for a uniformly random logging policy: the
number of matches); ``ess`` their minimum; ``max_weight`` the largest weight; and
``matches_per_position`` the number of rows where the log shows the target's article at the
target's position. Few matches mean wide intervals, whatever the point estimate says.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.errors import DataFormatError, RecsysError

REQUIRED = ("position", "article", "propensity", "clicked")
DEFAULT_CONTEXT = ("reader", "session", "step")
ESTIMATORS = ("ips", "snips", "dr", "dm", "logged")
STATS = ("count", "ips", "weight", "dr", "dm", "clicks")  # per unit and position, summed

RewardModel = Callable[[pd.DataFrame], np.ndarray]
TargetSlates = Mapping[Hashable, Sequence] | Callable[[pd.DataFrame], Sequence[Sequence]]


class PositionClickModel:
    """Click probability ``theta_s * gamma_a`` (clipped to [0, 1]) of article a at position
    s: a position-based model without the reader. ``__call__(frame)`` takes rows with
    ``position`` and ``article`` columns; an article never logged gets the mean
    attractiveness, a position never logged 0."""

    def __init__(self, examination: np.ndarray, attractiveness: pd.Series, mean: float) -> None:
        self.examination = np.asarray(examination, np.float64)
        self.attractiveness = attractiveness
        self.mean = float(mean)

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        pos = frame["position"].to_numpy(np.int64)
        theta = np.zeros(len(pos))
        known = (pos >= 0) & (pos < len(self.examination))
        theta[known] = self.examination[pos[known]]
        idx = self.attractiveness.index.get_indexer(frame["article"].to_numpy())
        gamma = np.where(idx >= 0, self.attractiveness.to_numpy()[np.maximum(idx, 0)], self.mean)
        return np.clip(theta * gamma, 0.0, 1.0)

    def __repr__(self) -> str:
        return (
            f"PositionClickModel(examination={np.round(self.examination, 4).tolist()}, "
            f"articles={len(self.attractiveness)})"
        )


def fit_click_model(
    impressions: pd.DataFrame, prior: float = 10.0, iterations: int = 200
) -> PositionClickModel:
    """The position-based click model ``P(click) = theta_s gamma_a`` fitted on a log by
    alternating the closed-form updates of its (Poisson) likelihood:

        theta_s = C_s / sum_a n_sa gamma_a,
        gamma_a = (C_a + prior g0) / (sum_s n_sa theta_s + prior),

    with n_sa the rows of article a at position s, C_s and C_a the clicks at s and on a, and
    g0 = sum C / sum n_sa theta_s the mean attractiveness: ``prior`` pseudo-exposures (at the
    most examined position) shrink a rarely shown article towards it. theta is scaled so that
    its largest value is 1 (only the products are identified)."""
    pos = impressions["position"].to_numpy(np.int64)
    art_codes, articles = pd.factorize(impressions["article"])
    clicked = impressions["clicked"].to_numpy(np.float64)
    k, n_articles = int(pos.max()) + 1, len(articles)
    pair = pos * n_articles + art_codes
    n_sa = np.bincount(pair, minlength=k * n_articles).reshape(k, n_articles)
    c_sa = np.bincount(pair, weights=clicked, minlength=k * n_articles).reshape(k, n_articles)
    c_s, c_a = c_sa.sum(1), c_sa.sum(0)
    theta = np.ones(k)
    gamma = np.full(n_articles, max(clicked.mean(), 1e-6))
    for _ in range(iterations):
        theta_new = c_s / np.maximum(n_sa @ gamma, 1e-300)
        theta_new /= theta_new.max() if theta_new.max() > 0 else 1.0
        exposure = theta_new @ n_sa
        g0 = c_a.sum() / max(exposure.sum(), 1e-300)
        gamma_new = (c_a + prior * g0) / (exposure + prior)
        done = np.allclose(theta_new, theta, rtol=1e-9, atol=0) and np.allclose(
            gamma_new, gamma, rtol=1e-9, atol=0
        )
        theta, gamma = theta_new, gamma_new
        if done:
            break
    mean = c_a.sum() / max((theta @ n_sa).sum(), 1e-300)
    return PositionClickModel(theta, pd.Series(gamma, index=pd.Index(articles)), mean)


def estimate(
    impressions: pd.DataFrame,
    target_slates: TargetSlates,
    k: int | None = None,
    reward_model: RewardModel | None = None,
    resamples: int = 1000,
    seed: int = 0,
    *,
    context_columns: Sequence[str] | None = None,
    cluster: str | None = None,
) -> dict:
    """IPS, SNIPS, DR (and DM, and the logging policy's own value) estimates of the target's
    expected clicks per block, with 95% bootstrap intervals and weight diagnostics; the
    formulas are in the module's docstring.

    ``impressions``: one row per (context, position) shown, with ``position`` (0-based),
    ``article``, ``propensity`` (in (0, 1]), ``clicked`` (0/1) and the context columns.
    ``context_columns``: the columns naming a context (one block shown); default ``context``
    when the frame has it, else ``reader``, ``session``, ``step``.
    ``target_slates``: the target's slate per context, best slot first; either a mapping from
    the context's key (the value of a single context column, else the tuple of the context
    columns' values) to a list of articles, or a callable given the contexts (a frame, one row
    per context in the order of first appearance: the context's first row without
    ``position``, ``article``, ``propensity`` and ``clicked``) and returning one slate per
    row. A slate longer than ``k`` is cut to its first ``k`` articles; a shorter one leaves
    the last slots empty (they count no click).
    ``k``: the target block's number of slots; default the log's (largest position + 1). Rows
    at positions >= k are left out.
    ``reward_model``: a callable taking rows shaped like ``impressions`` (``article`` and
    ``position`` set to the pair to score) and returning their click probabilities; default
    ``fit_click_model(impressions)``.
    ``resamples``, ``seed``: the bootstrap's; ``cluster``: a column whose values are resampled
    instead of contexts (e.g. ``reader``).

    Returns ``{"ips", "snips", "dr", "dm", "logged"}``, each ``{"value", "ci95",
    "per_impression", "per_impression_ci95", "per_position"}`` (``value`` per block, i.e.
    summed over the k positions, ``per_impression`` = value / k), plus ``k``, ``contexts``,
    ``rows``, ``units`` (resampled), ``resampled`` (``"context"`` or the cluster column),
    ``ess``, ``ess_per_position``, ``max_weight``, ``matches_per_position``,
    ``weight_mean_per_position``, ``reward_model`` (its repr). RecsysError (one line) for a
    log or slates that cannot be used."""
    if not isinstance(resamples, int | np.integer) or resamples < 1:
        raise RecsysError(f"resamples must be a whole number >= 1, got {resamples!r}")
    frame, ctx, keys, k = _prepared(impressions, k, context_columns)
    n_ctx = len(keys)
    pos = frame["position"].to_numpy(np.int64)
    art_codes, articles = pd.factorize(frame["article"])
    prop = frame["propensity"].to_numpy(np.float64)
    click = frame["clicked"].to_numpy(np.float64)

    cols = list(context_columns or _default_context(impressions))
    contexts = frame.iloc[np.unique(ctx, return_index=True)[1]].drop(columns=list(REQUIRED))
    contexts = contexts.reset_index(drop=True)
    table = _slates(target_slates, contexts, keys, cols, k)

    # the target's article at each row's (context, position): its value and its code
    target_value = table[ctx, pos]
    has_target = np.not_equal(target_value, None)
    known = pd.Index(articles)
    listed = table[np.not_equal(table, None)]
    if len(listed) and (known.get_indexer(pd.Index(listed, dtype=object)) < 0).all():
        raise RecsysError(
            "none of the target slates' articles appears in the log (the log's articles look "
            f"like {articles[0]!r}, the slates' like {listed[0]!r}): the same ids, of the same "
            "type, are needed"
        )
    target_code = np.full(len(frame), -2)
    target_code[has_target] = known.get_indexer(pd.Index(target_value[has_target], dtype=object))
    match = target_code == art_codes
    w = np.where(match, 1.0 / prop, 0.0)

    model = reward_model if reward_model is not None else fit_click_model(frame)
    r_logged = _rewards(model, frame.reset_index(drop=True), "logged rows")
    r_target = np.zeros(len(frame))
    if has_target.any():
        shown = frame.reset_index(drop=True).loc[has_target].copy()
        codes = target_code[has_target]
        shown["article"] = (  # the log's dtype when every target article is in the log
            known.take(codes)
            if (codes >= 0).all()
            else pd.array(target_value[has_target], dtype=object)
        )
        r_target[has_target] = _rewards(model, shown, "target's articles")

    per_row = {
        "count": np.ones(len(frame)),
        "ips": w * click,
        "weight": w,
        "dr": r_target + w * (click - r_logged),
        "dm": r_target,
        "clicks": click,
    }
    units, unit_names = _units(frame, ctx, n_ctx, cluster)
    n_units = len(unit_names)
    stats = np.zeros((n_units, len(STATS) * k))
    row_unit = units[ctx]
    for j, name in enumerate(STATS):
        cell = row_unit * k + pos
        stats[:, j * k : (j + 1) * k] = np.bincount(
            cell, weights=per_row[name], minlength=n_units * k
        ).reshape(n_units, k)

    point = _values(stats.sum(0, keepdims=True), k)
    boot = _bootstrap(stats, k, resamples, seed)
    out: dict = {}
    for name in ESTIMATORS:
        value = float(point[name].sum())
        lo, hi = np.quantile(boot[name], [0.025, 0.975])
        out[name] = {
            "value": value,
            "ci95": (float(lo), float(hi)),
            "per_impression": value / k,
            "per_impression_ci95": (float(lo) / k, float(hi) / k),
            "per_position": point[name][0].tolist(),
        }
    sum_w = np.bincount(pos, weights=w, minlength=k)
    sum_w2 = np.bincount(pos, weights=w * w, minlength=k)
    ess = np.divide(sum_w**2, sum_w2, out=np.zeros(k), where=sum_w2 > 0)
    counts = np.bincount(pos, minlength=k)
    out.update(
        k=k,
        contexts=n_ctx,
        rows=len(frame),
        units=n_units,
        resampled=cluster or "context",
        ess=float(ess.min()),
        ess_per_position=ess.tolist(),
        max_weight=float(w.max()) if len(w) else 0.0,
        matches_per_position=np.bincount(pos[match], minlength=k).tolist(),
        weight_mean_per_position=(sum_w / np.maximum(counts, 1)).tolist(),
        reward_model=repr(model),
    )
    return out


def _default_context(frame: pd.DataFrame) -> tuple[str, ...]:
    return ("context",) if "context" in frame.columns else DEFAULT_CONTEXT


def _prepared(
    impressions: pd.DataFrame, k: int | None, context_columns: Sequence[str] | None
) -> tuple[pd.DataFrame, np.ndarray, list, int]:
    """The checked log (rows at positions >= k left out), each row's context code, the
    contexts' keys in order of first appearance, and k."""
    if not isinstance(impressions, pd.DataFrame):
        raise RecsysError(
            f"impressions must be a pandas DataFrame, got {type(impressions).__name__}"
        )
    cols = list(context_columns or _default_context(impressions))
    for name in (*cols, *REQUIRED):
        if name not in impressions.columns:
            raise DataFormatError(
                f"impressions: column {name!r} not found; the log has columns: "
                f"{', '.join(map(str, impressions.columns))}"
            )
    if impressions.empty:
        raise RecsysError("impressions: the log has no rows")
    frame = impressions
    for name in (*cols, *REQUIRED):
        missing = frame[name].isna().to_numpy()
        if missing.any():
            _bad_row(frame, int(np.flatnonzero(missing)[0]), name, "")
    pos = pd.to_numeric(frame["position"], errors="coerce").to_numpy(np.float64)
    bad = ~(np.isfinite(pos) & (pos >= 0) & (pos == np.round(pos)))
    if bad.any():
        _bad_row(
            frame, int(np.flatnonzero(bad)[0]), "position", "must be a 0-based slot (0, 1, ...)"
        )
    prop = pd.to_numeric(frame["propensity"], errors="coerce").to_numpy(np.float64)
    bad = ~((prop > 0) & (prop <= 1))
    if bad.any():
        _bad_row(
            frame,
            int(np.flatnonzero(bad)[0]),
            "propensity",
            "must be in (0, 1]: the logging policy's probability of this article at this "
            "position (a pair it could not show cannot be reweighted)",
        )
    click = pd.to_numeric(frame["clicked"], errors="coerce").to_numpy(np.float64)
    bad = ~((click == 0) | (click == 1))
    if bad.any():
        _bad_row(frame, int(np.flatnonzero(bad)[0]), "clicked", "must be 0 or 1")
    logged_k = int(pos.max()) + 1
    if k is None:
        k = logged_k
    if not isinstance(k, int | np.integer) or k < 1:
        raise RecsysError(f"k must be a positive number of slots, got {k!r}")
    k = int(k)
    present = np.bincount(pos.astype(np.int64), minlength=max(k, logged_k))[:k]
    if (present == 0).any():
        s = int(np.flatnonzero(present == 0)[0])
        raise RecsysError(
            f"impressions: no row at position {s} (positions are 0-based; the log's go up to "
            f"{logged_k - 1}): the target's slot {s} cannot be estimated from this log"
            + (f"; k={s} estimates the first {s} slots" if s > 0 else "")
        )
    keep = pos < k
    frame = frame.loc[keep].copy()
    frame["position"] = pos[keep].astype(np.int64)
    frame["propensity"] = prop[keep]
    frame["clicked"] = click[keep]
    codes = frame.groupby(cols, sort=False).ngroup().to_numpy(np.int64)  # first-appearance order
    firsts = np.unique(codes, return_index=True)[1]
    heads = frame[cols].iloc[firsts]
    if len(cols) == 1:
        keys = [v.item() if hasattr(v, "item") else v for v in heads[cols[0]].to_numpy()]
    else:
        keys = list(heads.itertuples(index=False, name=None))
    pair = pd.Series(codes.astype(np.int64) * k + frame["position"].to_numpy())
    twice = pair.duplicated().to_numpy()
    if twice.any():
        i = int(np.flatnonzero(twice)[0])
        _bad_row(
            frame,
            i,
            "position",
            f"is logged twice for the context {keys[codes[i]]!r} (context columns: "
            f"{', '.join(cols)}): one row per (block shown, position) is needed; give "
            "context_columns that tell the blocks apart",
        )
    return frame, codes.astype(np.int64), keys, k


def _bad_row(frame: pd.DataFrame, i: int, column: str, problem: str):
    value = frame[column].iloc[i]
    where = f"impressions, row {frame.index[i]!r}, column {column!r}"
    if pd.isna(value):
        raise DataFormatError(f"{where}: the value is missing")
    shown = repr(value.item() if hasattr(value, "item") else value)
    raise DataFormatError(f"{where}: {shown} {problem}")


def _slates(
    target: TargetSlates, contexts: pd.DataFrame, keys: list, cols: list[str], k: int
) -> np.ndarray:
    """The target's slates as a ``(contexts, k)`` object array, None in the empty slots."""
    if callable(target) and not isinstance(target, Mapping):
        got = target(contexts)
        slates = list(got) if got is not None else []
        if len(slates) != len(contexts):
            raise RecsysError(
                f"target_slates returned {len(slates)} slates for {len(contexts)} contexts: "
                "one slate per row of the contexts frame it is given, in its order"
            )
    elif isinstance(target, Mapping):
        slates = []
        for key in keys:
            try:
                slates.append(target[key])
            except KeyError:
                shape = (
                    f"tuples of {', '.join(cols)}" if len(cols) > 1 else f"values of {cols[0]!r}"
                )
                raise RecsysError(
                    f"target_slates has no slate for the context {key!r} (keys: the {shape}; "
                    f"{len(keys)} contexts in the log); every logged context needs one"
                ) from None
    else:
        raise RecsysError(
            "target_slates must be a mapping from context key to slate, or a callable given "
            f"the contexts frame, got {type(target).__name__}"
        )
    square = _rectangular(slates, k)
    if square is not None:
        return _checked(square, np.full(len(keys), square.shape[1]), keys, k)
    table = np.full((len(keys), k), None, dtype=object)  # the target's article per slot
    length = np.zeros(len(keys), np.int64)
    for c, (key, slate) in enumerate(zip(keys, slates)):
        if isinstance(slate, str | bytes) or not hasattr(slate, "__len__"):
            raise RecsysError(
                f"target_slates: the slate for the context {key!r} must be a list of articles, "
                f"got {slate!r}"
            )
        cut = list(slate)[:k]
        table[c, : len(cut)] = cut
        length[c] = len(cut)
    return _checked(table, length, keys, k)


def _rectangular(slates: list, k: int) -> np.ndarray | None:
    """The slates as a ``(contexts, <= k)`` object array when they all have one length and
    hold scalars (the common case, checked without a loop over contexts), else None."""
    try:
        square = np.array(slates, dtype=object)
    except (ValueError, TypeError):
        return None
    if square.ndim != 2 or square.shape[1] == 0:
        return None
    return square[:, :k]


def _checked(table: np.ndarray, length: np.ndarray, keys: list, k: int) -> np.ndarray:
    """``table`` widened to k columns (None in the empty slots) after checking that no slate
    has an empty article or shows one twice."""
    if table.shape[1] < k:
        table = np.concatenate(
            [table, np.full((len(table), k - table.shape[1]), None, dtype=object)], 1
        )
    filled = np.arange(k)[None] < length[:, None]
    empty = pd.isna(table) & filled
    if empty.any():
        key = keys[int(np.flatnonzero(empty.any(1))[0])]
        raise RecsysError(f"target_slates: the slate for the context {key!r} has an empty article")
    codes = pd.factorize(table.ravel())[0].reshape(table.shape)
    codes = np.sort(np.where(filled, codes, -1 - np.arange(k)[None]), 1)  # empty: distinct
    twice = (np.diff(codes, axis=1) == 0).any(1)
    if twice.any():
        c = int(np.flatnonzero(twice)[0])
        shown = [a.item() if hasattr(a, "item") else a for a in table[c, : length[c]]]
        raise RecsysError(
            f"target_slates: the slate for the context {keys[c]!r} shows an article twice: {shown}"
        )
    return table


def _rewards(model: RewardModel, rows: pd.DataFrame, what: str) -> np.ndarray:
    try:
        r = np.asarray(model(rows), np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise RecsysError(f"reward_model failed on the {what}: {e}") from e
    if len(r) != len(rows):
        raise RecsysError(
            f"reward_model returned {len(r)} values for {len(rows)} rows ({what}): one click "
            "probability per row is needed"
        )
    if not np.isfinite(r).all():
        raise RecsysError(f"reward_model returned a value that is not finite for the {what}")
    return r


def _units(
    frame: pd.DataFrame, ctx: np.ndarray, n_ctx: int, cluster: str | None
) -> tuple[np.ndarray, list]:
    """Each context's resampling unit (its own, or its cluster column's value)."""
    if cluster is None:
        return np.arange(n_ctx), list(range(n_ctx))
    if cluster not in frame.columns:
        raise RecsysError(
            f"cluster={cluster!r}: no such column in the impressions; it has: "
            f"{', '.join(map(str, frame.columns))}"
        )
    codes, names = pd.factorize(frame[cluster], use_na_sentinel=False)
    unit = np.full(n_ctx, -1)
    unit[ctx] = codes
    split = np.zeros(n_ctx, bool)
    np.logical_or.at(split, ctx, unit[ctx] != codes)
    if split.any():
        raise RecsysError(
            f"cluster={cluster!r}: a context's rows have different {cluster} values; a context "
            "must lie within one cluster"
        )
    return unit, list(names)


def _values(sums: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-position values ``(B, k)`` of each estimator from per-position sums ``(B, 6k)``."""
    part = {name: sums[:, j * k : (j + 1) * k] for j, name in enumerate(STATS)}
    count, weight = part["count"], part["weight"]

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    return {
        "ips": ratio(part["ips"], count),
        "snips": ratio(part["ips"], weight),
        "dr": ratio(part["dr"], count),
        "dm": ratio(part["dm"], count),
        "logged": ratio(part["clicks"], count),
    }


def _bootstrap(stats: np.ndarray, k: int, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Each estimator's value (summed over positions) on ``resamples`` resamples of the units
    (rows of ``stats``), drawn with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    n = len(stats)
    stats = np.asfortranarray(stats)  # (counts @ stats) several times faster than C order
    chunk = max(1, min(resamples, 4_000_000 // max(n, 1)))  # bounded memory: chunk x n counts
    out = {name: np.empty(resamples) for name in ESTIMATORS}
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        values = _values(counts @ stats, k)
        for name in ESTIMATORS:
            out[name][start : start + b] = values[name].sum(1)
    return out
