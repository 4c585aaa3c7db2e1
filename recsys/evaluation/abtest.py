"""A/B analysis of a deployment log (``recsys-abtest``): per-arm metrics of the readers' sessions,
arm differences against a control with intervals and p-values, a sample-ratio-mismatch check,
the effect by day, and power / minimum detectable effects for planning.

The log is a folder (``recsys.data.ab_logs.read_log``): ``views.csv`` (one row per article
view: reader, session, time, dwell_seconds, source, arm, position), optionally
``impressions.csv`` (one row per slot of a block shown: reader, session, step, position,
article, propensity, clicked) and
``assignment.csv`` (reader, arm: every randomized reader, those who never came included).

**The reader is the unit of randomization**, so every interval and p-value treats a reader's
sessions as one cluster: sessions of one reader are correlated (some readers read long, some
short), and an interval that counts sessions as independent is too narrow (its false-positive
rate is well above the nominal 5%). Each metric is a ratio of sums over readers,
``R = sum_r N_r / sum_r D_r`` (e.g. articles per session: N_r the reader's views, D_r their
sessions), and its uncertainty comes from one of:

- ``method="bootstrap"`` (the default): a **cluster bootstrap over readers**, stratified by arm:
  each resample draws, within every arm, as many readers as the arm has, with replacement,
  each with all their sessions; the interval is the percentile interval of the resampled
  values; the p-value of a difference inverts it: ``p = min(1, 2 (min(#{d* <= 0},
  #{d* >= 0}) + 1) / (B + 1))`` over the ``B`` resampled differences ``d*``.
- ``method="delta"``: the **delta method for a ratio of sums per reader**: with ``n`` readers,
  ``mean(D)`` the mean denominator and ``L_r = (N_r - R D_r) / mean(D)`` the linearized
  per-reader value, ``Var(R) ~ sigma^2 / n`` where ``sigma^2 = sum_r L_r^2 / (n - 1)`` is the
  **per-reader variance** of the metric; a difference of independent arms has ``Var(R_t) +
  Var(R_c)``, a relative lift ``R_t / R_c - 1`` has ``(R_t / R_c)^2 (Var(R_t) / R_t^2 +
  Var(R_c) / R_c^2)``; normal intervals and two-sided z-test p-values.

The per-reader variance ``sigma^2`` (delta method, whichever ``method``) also gives the power
analysis: ``minimum_detectable_effect`` and ``readers_needed``.

The functions below work on DataFrames with the canonical column names (``reader``,
``session``, ``arm``, ``time``, ``dwell``, ``source``; ``clicked``, ``step`` for impressions);
``recsys.data.ab_logs.read_log`` renames a folder's columns to them; the report's markdown is
``recsys.evaluation.abtest_report.to_markdown``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from recsys.data.ab_logs import parse_times
from recsys.errors import RecsysError

# Per-reader sums (the columns of ``reader_table``) that the metrics are ratios of.
SUMS = (
    "one",  # 1 per reader
    "sessions",  # sessions with at least one view
    "views",  # article views (rows of views.csv)
    "single",  # sessions with exactly one view
    "dwell",  # seconds of known dwell
    "dwell_views",  # views with a known dwell
    "bounces",  # views with dwell < bounce_seconds
    "widget_views",  # views whose source is a widget source
    "impressions",  # slots of blocks shown (rows of impressions.csv)
    "clicks",  # impressions clicked
    "blocks",  # blocks shown: distinct (session, step)
    "blocks_clicked",  # blocks with at least one click
)
# name -> (numerator, denominator, what it means)
METRICS = {
    "sessions_per_reader": ("sessions", "one", "sessions per reader (per randomized reader "
                            "with assignment.csv, else per reader seen)"),
    "articles_per_session": ("views", "sessions", "article views per session"),
    "single_article_session_rate": ("single", "sessions",
                                    "share of sessions with exactly one article view"),
    "time_on_site_per_session": ("dwell", "sessions",
                                 "seconds per session: sum of the session's known dwell"),
    "bounce_rate": ("bounces", "dwell_views",
                    "share of views (with a known dwell) under bounce_seconds"),
    "widget_views_per_session": ("widget_views", "sessions",
                                 "views per session that came from a click in the block"),
    "click_through": ("clicks", "impressions", "clicks / impressions (slots of blocks shown)"),
    "block_click_rate": ("blocks_clicked", "blocks",
                         "share of blocks shown with at least one click"),
}  # fmt: skip
PER_READER = ("sessions_per_reader",)  # not by day: a reader's day without a session counts


# ---------------------------------------------------------------------------------------------
# Per-reader and per-session sums


def reader_arms(
    views: pd.DataFrame, assignment: pd.DataFrame | None = None
) -> tuple[pd.Series, list[str]]:
    """Each reader's arm (a Series indexed by reader) and notes. With ``assignment`` its arm
    (intention to treat: views logged under another arm are counted in a note, and stay with
    the assigned arm); views of readers not in it are left out (a note). Without: the arm of
    the reader's views, and for a reader seen in several arms that of their first view (by
    time where known), counted in a note."""
    arms, _, notes = _arms(views, assignment)
    return arms, notes


def _arms(
    views: pd.DataFrame, assignment: pd.DataFrame | None
) -> tuple[pd.Series, np.ndarray, list[str]]:
    """``reader_arms``, and for each view the position of its reader in the arms' index (-1:
    a reader without an arm)."""
    notes = []
    if assignment is not None:
        arms = assignment.drop_duplicates("reader").set_index("reader")["arm"]
        codes = arms.index.get_indexer(views["reader"])
        known = codes >= 0
        if not known.all():
            lost = views.loc[~known, "reader"]
            notes.append(
                f"{lost.nunique():,} readers in views ({len(lost):,} views) are not in "
                "assignment.csv: left out"
            )
        seen = views[known]
        other = seen["arm"].to_numpy() != arms.to_numpy()[codes[known]]
        if other.any():
            notes.append(
                f"{int(other.sum()):,} views of {seen.loc[other, 'reader'].nunique():,} readers "
                "were logged under another arm than the reader's assignment: counted with the "
                "assigned arm (intention to treat)"
            )
        return arms, codes, notes
    order = views.sort_values("time", kind="stable") if "time" in views else views
    arms = order.drop_duplicates("reader").set_index("reader")["arm"]
    several = views.groupby("reader")["arm"].nunique()
    if (several > 1).any():
        notes.append(
            f"{int((several > 1).sum()):,} readers have views in more than one arm: each is "
            "counted with the arm of their first view"
        )
    return arms, arms.index.get_indexer(views["reader"]), notes


def session_table(
    views: pd.DataFrame,
    impressions: pd.DataFrame | None = None,
    bounce_seconds: float = 10.0,
    widget_sources: Sequence[str] = ("widget",),
) -> pd.DataFrame:
    """One row per (reader, session) with the sums ``SUMS`` (but ``one``) and ``day``, the UTC
    calendar day of the session's first view (None without times). A session that only
    impressions.csv has counts its impressions, but not as a session (``sessions`` 0)."""
    keys = ["reader", "session"]
    reader_code, reader_names = pd.factorize(views["reader"])
    session_code, session_names = pd.factorize(views["session"])
    width = max(len(session_names), 1)
    uniq, inv = np.unique(reader_code.astype(np.int64) * width + session_code, return_inverse=True)
    inv = inv.ravel()

    def total(weights=None) -> np.ndarray:
        return np.bincount(inv, weights=weights, minlength=len(uniq)).astype(np.float64)

    n_views = total()
    s = pd.DataFrame(
        {
            "reader": np.asarray(reader_names, dtype=object)[uniq // width],
            "session": np.asarray(session_names, dtype=object)[uniq % width],
            "sessions": 1.0,
            "views": n_views,
            "single": (n_views == 1).astype(np.float64),
        }
    )
    dwell = views["dwell"].to_numpy(np.float64) if "dwell" in views else np.full(len(inv), np.nan)
    known = ~np.isnan(dwell)
    s["dwell"] = total(np.where(known, dwell, 0.0))
    s["dwell_views"] = total(known.astype(np.float64))
    s["bounces"] = total((known & (np.nan_to_num(dwell) < bounce_seconds)).astype(np.float64))
    widget = views["source"].isin([str(w) for w in widget_sources]) if "source" in views else None
    s["widget_views"] = 0.0 if widget is None else total(widget.to_numpy(np.float64))
    if "time" in views and len(inv):
        t = views["time"]
        t = t.dt.tz_convert("UTC").dt.tz_localize(None) if t.dt.tz is not None else t
        t = t.to_numpy("datetime64[ns]")
        order = np.lexsort((t, inv))  # by session, then time: each session's first view first
        first = order[np.r_[0, np.flatnonzero(np.diff(inv[order])) + 1]]
        s["day"] = t[first].astype("datetime64[D]").astype(str)
    else:
        s["day"] = None
    s = s.set_index(keys)
    for col in ("impressions", "clicks", "blocks", "blocks_clicked"):
        s[col] = 0
    if impressions is not None and len(impressions):
        imp = impressions.assign(_n=1)
        g = imp.groupby(keys).agg(impressions=("_n", "sum"), clicks=("clicked", "sum"))
        if "step" in imp:
            blocks = imp.groupby([*keys, "step"])["clicked"].max().groupby(level=[0, 1])
            g["blocks"] = blocks.size()
            g["blocks_clicked"] = blocks.sum()
        else:
            g["blocks"] = g["blocks_clicked"] = 0
        s = s.drop(columns=list(g.columns)).join(g, how="outer")
        s[[c for c in s.columns if c != "day"]] = s.drop(columns="day").fillna(0)
    return s.reset_index()


def reader_table(
    views: pd.DataFrame,
    impressions: pd.DataFrame | None = None,
    assignment: pd.DataFrame | None = None,
    bounce_seconds: float = 10.0,
    widget_sources: Sequence[str] = ("widget",),
) -> tuple[pd.DataFrame, list[str]]:
    """One row per reader (indexed by reader): ``arm`` and the sums ``SUMS``; with
    ``assignment`` every randomized reader (zeros for those never seen), else the readers
    seen in views. And the notes of ``reader_arms``."""
    arms, codes, notes = _arms(views, assignment)
    views = views[codes >= 0]
    if impressions is not None:
        known = arms.index.get_indexer(impressions["reader"]) >= 0
        if not known.all():
            notes.append(f"{int((~known).sum()):,} impressions of readers without an arm: left out")
        impressions = impressions[known]
        if "arm" in impressions:
            assigned = arms.to_numpy()[arms.index.get_indexer(impressions["reader"])]
            other = int((impressions["arm"].to_numpy() != assigned).sum())
            if other:
                notes.append(f"{other:,} impressions were logged under another arm than their "
                             "reader's: counted with the reader's arm")  # fmt: skip
    s = session_table(views, impressions, bounce_seconds, widget_sources)
    codes = arms.index.get_indexer(s["reader"])
    r = pd.DataFrame({"arm": arms, "one": 1.0}, index=arms.index)
    for col in SUMS[1:]:
        r[col] = np.bincount(codes, weights=s[col].to_numpy(np.float64), minlength=len(arms))
    return r, notes


# ---------------------------------------------------------------------------------------------
# Statistics


def ratio_and_variance(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, float]:
    """``(R, sigma^2)``: ``R = sum(N) / sum(D)`` over readers, and its **per-reader variance**
    by the delta method, ``sigma^2 = sum_r L_r^2 / (n - 1)`` with ``L_r = (N_r - R D_r) /
    mean(D)``, so that ``Var(R) ~ sigma^2 / n`` (NaN for no denominator, or fewer than 2
    readers for the variance)."""
    num = np.asarray(numerators, np.float64)
    den = np.asarray(denominators, np.float64)
    n = len(num)
    if n == 0 or den.sum() <= 0:
        return float("nan"), float("nan")
    ratio = num.sum() / den.sum()
    if n < 2:
        return float(ratio), float("nan")
    lin = (num - ratio * den) / den.mean()
    return float(ratio), float(np.sum(lin**2) / (n - 1))


def _z(level: float) -> float:
    return float(stats.norm.ppf((1 + level) / 2))


def _delta_group(x: np.ndarray, n: int, num: int, den: int) -> tuple[float, float]:
    """``ratio_and_variance`` of one metric over ``n`` readers of whom ``x`` holds the rows
    (the others have zeros), as ``(R, Var(R))``."""
    if n == 0:
        return float("nan"), float("nan")
    total_den = x[:, den].sum()
    if total_den <= 0:
        return float("nan"), float("nan")
    ratio = x[:, num].sum() / total_den
    if n < 2:
        return float(ratio), float("nan")
    lin = (x[:, num] - ratio * x[:, den]) / (total_den / n)  # zeros for readers without rows
    return float(ratio), float(np.sum(lin**2) / (n - 1) / n)


def _bootstrap_sums(
    n: int, rows: Sequence[tuple[np.ndarray, np.ndarray]], resamples: int, rng
) -> list[np.ndarray]:
    """Cluster bootstrap over ``n`` readers: per resample, reader weights (how often each of
    the ``n`` was drawn, ``n`` draws with replacement), and for each ``(idx, x)`` in ``rows``
    (rows ``x`` of the readers ``idx``) the weighted column sums, ``(resamples, columns)``.
    The same draws serve every entry (the whole test and each day). Time: O(resamples x
    (n + the rows of every entry)); ``method="delta"`` is the instant alternative for a huge
    log."""
    out = [np.zeros((resamples, x.shape[1])) for _, x in rows]
    if n == 0:
        return out
    rows = [(idx, np.asfortranarray(x, np.float64)) for idx, x in rows]  # a fast product
    chunk = max(1, min(resamples, 1_000_000 // n))  # bounded memory: chunk x n weights
    for start in range(0, resamples, chunk):
        c = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(c, n)) + (np.arange(c) * n)[:, None]
        weights = np.bincount(draws.ravel(), minlength=c * n).reshape(c, n).astype(np.float64)
        for (idx, x), o in zip(rows, out):
            whole = len(idx) == n and np.array_equal(idx, np.arange(n))
            w = weights if whole else weights[:, idx]
            o[start : start + c] = np.einsum("cn,nk->ck", w, x)  # no BLAS threads: faster here
    return out


def _p_from_draws(draws: np.ndarray) -> float:
    """Two-sided p-value of a difference from its bootstrap draws (percentile inversion)."""
    d = draws[~np.isnan(draws)]
    if len(d) == 0:
        return float("nan")
    below, above = int(np.sum(d <= 0)), int(np.sum(d >= 0))
    return float(min(1.0, 2 * (min(below, above) + 1) / (len(d) + 1)))


def _quantiles(draws: np.ndarray, level: float) -> list[float]:
    d = draws[~np.isnan(draws)]
    if len(d) < 0.5 * len(draws) or len(d) == 0:  # mostly undefined (no denominator)
        return [float("nan"), float("nan")]
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def compare_groups(
    groups: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    readers: Mapping[str, int],
    control: str,
    metrics: Sequence[str],
    method: str = "bootstrap",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Per group (the whole test, each day), per arm and metric: the value with its interval,
    and each arm's difference to ``control`` (absolute and relative) with intervals and a
    p-value. ``groups[g][arm] = (idx, x)``: the arm's readers ``0..readers[arm]-1`` that
    have rows in the group (``idx``) and their sums (``x``, columns ``SUMS``); the others
    count with zeros. ``method``: ``bootstrap`` (cluster bootstrap over readers, stratified
    by arm, the same draws for every group) or ``delta`` (see the module's docstring)."""
    if method not in ("bootstrap", "delta"):
        raise RecsysError(f"method must be bootstrap or delta, got {method!r}")
    cols = {name: i for i, name in enumerate(SUMS)}
    pairs = {m: (cols[METRICS[m][0]], cols[METRICS[m][1]]) for m in metrics}
    arms = list(readers)
    draws: dict[str, dict[str, np.ndarray]] = {g: {} for g in groups}  # g -> arm -> (B, m)
    if method == "bootstrap":
        for k, arm in enumerate(arms):
            rng = np.random.default_rng([seed, k])
            names = [g for g in groups if arm in groups[g]]
            sums = _bootstrap_sums(readers[arm], [groups[g][arm] for g in names], resamples, rng)
            for g, s in zip(names, sums):
                with np.errstate(invalid="ignore", divide="ignore"):
                    draws[g][arm] = np.stack(
                        [s[:, a] / np.where(s[:, b] > 0, s[:, b], np.nan) for a, b in
                         pairs.values()], axis=1)  # fmt: skip
    z = _z(level)
    out = {}
    for g, by_arm in groups.items():
        values: dict[str, dict[str, dict]] = {}
        for arm in arms:
            idx, x = by_arm.get(arm, (np.zeros(0, np.int64), np.zeros((0, len(SUMS)))))
            values[arm] = {}
            for j, (m, (a, b)) in enumerate(pairs.items()):
                ratio, var = _delta_group(x, readers[arm], a, b)
                if method == "bootstrap" and arm in draws[g]:
                    ci = _quantiles(draws[g][arm][:, j], level) if not math.isnan(ratio) else [
                        float("nan")] * 2  # fmt: skip
                else:
                    ci = [ratio - z * math.sqrt(var), ratio + z * math.sqrt(var)]
                values[arm][m] = {"value": ratio, "ci": ci, "var": var}
        diffs: dict[str, dict[str, dict]] = {}
        for arm in arms:
            if arm == control:
                continue
            diffs[arm] = {}
            for j, m in enumerate(pairs):
                c, t = values[control][m], values[arm][m]
                diff = t["value"] - c["value"]
                lift = t["value"] / c["value"] - 1 if c["value"] else float("nan")
                if method == "bootstrap" and arm in draws[g] and control in draws[g]:
                    d = draws[g][arm][:, j] - draws[g][control][:, j]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        rel = draws[g][arm][:, j] / draws[g][control][:, j] - 1
                    rel[~np.isfinite(rel)] = np.nan
                    ok = not math.isnan(diff)
                    ci = _quantiles(d, level) if ok else [float("nan")] * 2
                    lift_ci = _quantiles(rel, level) if not math.isnan(lift) else [float("nan")] * 2
                    p = _p_from_draws(d) if ok else float("nan")
                else:
                    se = math.sqrt(t["var"] + c["var"])
                    ci = [diff - z * se, diff + z * se]
                    se_lift = (
                        abs(t["value"] / c["value"])
                        * math.sqrt(t["var"] / t["value"] ** 2 + c["var"] / c["value"] ** 2)
                        if c["value"] and t["value"]
                        else float("nan")
                    )
                    lift_ci = [lift - z * se_lift, lift + z * se_lift]
                    if math.isnan(se) or math.isnan(diff):
                        p = float("nan")
                    elif se == 0:
                        p = 1.0 if diff == 0 else 0.0
                    else:
                        p = float(2 * stats.norm.sf(abs(diff) / se))
                diffs[arm][m] = {"diff": diff, "ci": ci, "lift": lift, "lift_ci": lift_ci, "p": p}
        out[g] = {"per_arm": values, "differences": diffs}
    return out


def srm_check(
    readers: Mapping[str, int],
    expected: Mapping[str, float] | None = None,
    threshold: float = 0.001,
) -> dict:
    """Sample-ratio mismatch: Pearson's chi-square test of the readers per arm against the
    expected shares (``expected``: arm -> share, normalized to sum 1; None: equal shares);
    ``chi2 = sum_a (n_a - N s_a)^2 / (N s_a)`` with ``k - 1`` degrees of freedom.
    ``mismatch`` when ``p < threshold`` (0.001: a split this far off is almost never chance,
    and the randomization or the logging is to be checked before any metric is trusted). An
    arm of ``expected`` without readers counts 0; an arm with readers that ``expected``
    lacks is an error."""
    counts = {str(a): int(n) for a, n in readers.items()}
    if expected is None:
        shares = {a: 1.0 for a in counts}
    else:
        shares = {}
        for a, s in expected.items():
            try:
                shares[str(a)] = float(s)
            except (TypeError, ValueError):
                raise RecsysError(f"expected_split.{a} must be a number, got {s!r}") from None
        if any(not (s >= 0) for s in shares.values()) or sum(shares.values()) <= 0:
            raise RecsysError(f"expected_split must hold non-negative shares, got {shares}")
        unknown = sorted(set(counts) - set(shares))
        if unknown:
            raise RecsysError(
                f"expected_split has no share for arm(s) {', '.join(unknown)} of the log "
                f"(it has {', '.join(sorted(shares))})"
            )
    total_share = sum(shares.values())
    shares = {a: s / total_share for a, s in shares.items()}
    arms = list(shares)
    observed = np.array([counts.get(a, 0) for a in arms], np.float64)
    n = observed.sum()
    exp = np.array([shares[a] for a in arms]) * n
    if n == 0 or len(arms) < 2:
        chi2, p = float("nan"), float("nan")
    elif np.any((exp == 0) & (observed > 0)):
        chi2, p = float("inf"), 0.0  # readers in an arm expected to have none
    else:
        keep = exp > 0
        chi2 = float(np.sum((observed[keep] - exp[keep]) ** 2 / exp[keep]))
        p = float(stats.chi2.sf(chi2, int(keep.sum()) - 1))
    mismatch = bool(p < threshold) if not math.isnan(p) else False
    return {
        "readers": {a: int(counts.get(a, 0)) for a in arms},
        "expected_share": shares,
        "expected_readers": dict(zip(arms, exp.tolist())),
        "chi2": chi2,
        "df": len(arms) - 1,
        "p": p,
        "threshold": threshold,
        "mismatch": mismatch,
    }


def minimum_detectable_effect(
    variance_control: float,
    n_control: int,
    n_treatment: int,
    variance_treatment: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest absolute difference a two-sided test at ``alpha`` detects with probability
    ``power``: ``(z_{1 - alpha/2} + z_power) sqrt(s_c^2 / n_c + s_t^2 / n_t)`` with ``s^2`` the
    per-reader variances (``ratio_and_variance``; the treatment's defaults to the control's)
    and ``n`` the readers per arm."""
    vt = variance_control if variance_treatment is None else variance_treatment
    if n_control < 1 or n_treatment < 1:
        return float("inf")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * math.sqrt(variance_control / n_control + vt / n_treatment))


def readers_needed(
    variance: float,
    baseline: float,
    relative_lift: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Readers per arm (two equal arms, both with per-reader variance ``variance``) for a
    two-sided test at ``alpha`` to detect ``baseline * relative_lift`` with probability
    ``power``: ``ceil(2 s^2 (z_{1 - alpha/2} + z_power)^2 / (baseline * lift)^2)``."""
    effect = abs(baseline * relative_lift)
    if not effect > 0 or math.isnan(variance):
        raise RecsysError(f"no effect to detect: baseline {baseline} x lift {relative_lift}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return int(math.ceil(2 * variance * z**2 / effect**2))


def power_analysis(
    readers: pd.DataFrame,
    control: str,
    metrics: Sequence[str] | None = None,
    target_lift: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
) -> dict:
    """Per metric, from ``reader_table``'s rows: the control's value, each arm's per-reader
    variance (delta method) and readers, the MDE of each arm against the control (absolute,
    and relative to the control's value) for the observed readers, and the readers per arm
    needed to detect a relative lift of ``target_lift`` (``readers_needed`` with the
    control's per-reader variance)."""
    metrics = list(metrics or available_metrics(readers))
    out = {}
    by_arm = {arm: frame for arm, frame in readers.groupby("arm", sort=True)}
    if control not in by_arm:
        raise RecsysError(f"control arm {control!r} has no reader")
    for m in metrics:
        num, den, _ = METRICS[m]
        est = {a: ratio_and_variance(f[num].to_numpy(), f[den].to_numpy()) for a, f in
               by_arm.items()}  # fmt: skip
        base, var_c = est[control]
        mde = {}
        for arm, f in by_arm.items():
            if arm == control:
                continue
            abs_mde = minimum_detectable_effect(
                var_c, len(by_arm[control]), len(f), est[arm][1], alpha, power
            )
            mde[arm] = {"absolute": abs_mde, "relative": abs_mde / base if base else float("nan")}
        try:
            needed = readers_needed(var_c, base, target_lift, alpha, power)
        except RecsysError:
            needed = None
        out[m] = {
            "control_value": base,
            "per_reader_variance": {a: e[1] for a, e in est.items()},
            "readers": {a: len(f) for a, f in by_arm.items()},
            "mde": mde,
            "target_lift": target_lift,
            "readers_needed_per_arm": needed,
            "alpha": alpha,
            "power": power,
        }
    return out


def available_metrics(readers: pd.DataFrame, have: Sequence[str] | None = None) -> list[str]:
    """The metrics the data supports: those whose denominator is not zero everywhere (no
    impressions: no click-through; no dwell: no bounce rate ...), restricted to ``have``."""
    out = []
    for m, (_, den, _) in METRICS.items():
        if have is not None and m not in have:
            continue
        if readers[den].sum() > 0:
            out.append(m)
    return out


# ---------------------------------------------------------------------------------------------
# The analysis


def summarize(
    views: pd.DataFrame,
    impressions: pd.DataFrame | None = None,
    assignment: pd.DataFrame | None = None,
    *,
    control: str | None = None,
    expected_split: Mapping[str, float] | None = None,
    bounce_seconds: float = 10.0,
    widget_sources: Sequence[str] = ("widget",),
    method: str = "bootstrap",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    target_lift: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
    metrics: Sequence[str] | None = None,
    by_day: bool = True,
    srm_threshold: float = 0.001,
    arms: Sequence[str] | None = None,
) -> dict:
    """The A/B analysis of a log (frames with canonical columns: ``views`` needs reader,
    session, arm, and optionally time (UTC), dwell (seconds, NaN unknown), source;
    ``impressions`` reader, session, clicked (0/1), optionally step; ``assignment`` reader,
    arm). Returns a JSON-ready dict (NaN as None): ``arms``, ``control``, ``method``,
    ``per_arm`` (readers, sessions, views, each metric's value and interval),
    ``differences`` (per arm but the control: per metric ``diff``, ``ci``, ``lift``,
    ``lift_ci``, ``p``), ``srm`` (``srm_check``), ``by_day`` (per UTC day of the session
    start: readers and sessions per arm and the differences), ``power``
    (``power_analysis``), ``metrics`` (what each means) and ``notes``. ``control`` defaults
    to the first arm in sorted order. ``arms``: the arms of the test (default: the
    assignment's, else every arm of the views); views and impressions logged under another
    arm (a period before the test, a holdout) are left out, counted in a note (``test_rows``).
    RecsysError for fewer than 2 arms, an unknown control or an arm of ``arms`` without a
    reader."""
    if resamples < 1 and method == "bootstrap":
        raise RecsysError(f"resamples must be >= 1, got {resamples}")
    if not 0 < level < 1:
        raise RecsysError(f"level must be between 0 and 1, got {level}")
    if not bounce_seconds >= 0:
        raise RecsysError(f"bounce_seconds must be >= 0, got {bounce_seconds}")
    views = _canonical_views(views)
    impressions = _canonical_ids(impressions, ("reader", "session", "step", "arm"))
    assignment = _canonical_ids(assignment, ("reader", "arm"))
    views, impressions, assignment, notes = test_rows(views, impressions, assignment, arms)
    readers, more = reader_table(views, impressions, assignment, bounce_seconds, widget_sources)
    notes += more
    arms = sorted(readers["arm"].unique())
    if len(arms) < 2:
        raise RecsysError(
            f"the log has {len(arms)} arm{'s' * (len(arms) != 1)} ({', '.join(arms) or 'none'}): "
            "an A/B analysis needs at least 2 (check columns.arm, or assignment.csv)"
        )
    if control is None:
        control = arms[0]
        notes.append(f"control arm: {control} (the first in sorted order; set control=...)")
    control = str(control)
    if control not in arms:
        raise RecsysError(f"control={control!r} is not an arm of the log: {', '.join(arms)}")
    arms = [control] + [a for a in arms if a != control]
    if metrics is not None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise RecsysError(f"unknown metric(s) {unknown}: choose from {list(METRICS)}")
    names = available_metrics(readers, metrics)
    if "dwell" not in views:
        names = [m for m in names if m not in ("time_on_site_per_session", "bounce_rate")]
        notes.append("no dwell column: time on site and bounce rate not computed")
    if "source" not in views:
        names = [m for m in names if m != "widget_views_per_session"]
        notes.append("no source column: widget views per session not computed")
    unknown_dwell = int(views["dwell"].isna().sum()) if "dwell" in views else 0
    if unknown_dwell:
        notes.append(f"{unknown_dwell:,} views without a dwell: left out of the bounce rate, "
                     "0 seconds in time on site")  # fmt: skip

    # The arms' readers, numbered 0..n-1, and their rows for the whole test and each day.
    index = {a: readers.index[readers["arm"].to_numpy() == a] for a in arms}
    counts = {a: len(index[a]) for a in arms}
    groups: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"all": {}}
    for a in arms:
        x = readers.loc[index[a], list(SUMS)].to_numpy(np.float64)
        groups["all"][a] = (np.arange(len(x)), x)
    days: list[str] = []
    day_metrics = [m for m in names if m not in PER_READER]
    day_counts: dict[str, dict[str, dict[str, int]]] = {}
    if by_day and "time" in views:
        s = session_table(_known(views, readers), _known(impressions, readers), bounce_seconds,
                          widget_sources)  # fmt: skip
        s = s[s["day"].notna()]
        s["one"] = 0.0
        per = s.groupby(["day", "reader"])[list(SUMS)].sum()
        days = sorted(per.index.get_level_values(0).unique())
        position = {a: pd.Series(np.arange(counts[a]), index=index[a]) for a in arms}
        arm_of = readers["arm"]
        for day in days:
            block = per.loc[day]
            groups[day] = {}
            day_counts[day] = {"readers": {}, "sessions": {}}
            for a in arms:
                rows = block[arm_of.reindex(block.index).to_numpy() == a]
                idx = position[a].reindex(rows.index).to_numpy()
                groups[day][a] = (idx, rows.to_numpy(np.float64))
                day_counts[day]["readers"][a] = int((rows["sessions"] > 0).sum())
                day_counts[day]["sessions"][a] = int(rows["sessions"].sum())
    elif by_day:
        notes.append("no time column: no effect by day")

    found = compare_groups(groups, counts, control, names, method, resamples, level, seed)
    per_arm = {}
    for a in arms:
        rows = readers.loc[index[a]]
        found_a = found["all"]["per_arm"][a]
        per_arm[a] = {
            "readers": counts[a],
            "readers_seen": int((rows["sessions"] > 0).sum()),
            "sessions": int(rows["sessions"].sum()),
            "views": int(rows["views"].sum()),
            **{m: {"value": v["value"], "ci": v["ci"]} for m, v in found_a.items()},
        }
    by_day_out = {}
    for day in days:
        diffs = {a: {m: d for m, d in found[day]["differences"][a].items() if m in day_metrics}
                 for a in arms[1:]}  # fmt: skip
        values = {a: {m: found[day]["per_arm"][a][m]["value"] for m in day_metrics} for a in arms}
        by_day_out[day] = {**day_counts[day], "values": values, "differences": diffs}
    srm = srm_check(counts, expected_split, srm_threshold)
    srm["readers_from"] = (
        "assignment.csv (every randomized reader)" if assignment is not None
        else "views (the readers seen: no assignment.csv)"
    )  # fmt: skip
    if srm["mismatch"]:
        notes.insert(0, srm_warning(srm))
    if method == "bootstrap":
        described = (f"cluster bootstrap over readers ({resamples} resamples within each arm, "
                     "percentile intervals, p-values by inverting them: the smallest is "
                     f"{2 / (resamples + 1):.2g})")  # fmt: skip
    else:
        described = "delta method for ratios of per-reader sums (normal intervals, z-tests)"
    result = {
        "arms": arms,
        "control": control,
        "method": method,
        "method_description": described,
        "unit": "reader (the unit of randomization): a reader's sessions are one cluster",
        "level": level,
        "bounce_seconds": bounce_seconds,
        "metrics": {m: METRICS[m][2] for m in names},
        "per_arm": per_arm,
        "differences": found["all"]["differences"],
        "srm": srm,
        "by_day": by_day_out,
        "power": power_analysis(readers, control, names, target_lift, alpha, power),
        "notes": notes,
    }
    return _json_ready(result)


def test_rows(
    views: pd.DataFrame,
    impressions: pd.DataFrame | None = None,
    assignment: pd.DataFrame | None = None,
    arms: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, list[str]]:
    """The rows of the test's ``arms`` (default: the assignment's arms, else all): views and
    impressions logged under another arm (e.g. ``site`` before the test) and readers assigned
    to another arm are left out, each counted in a note. RecsysError for an arm of ``arms``
    that neither the assignment nor the views have."""
    notes: list[str] = []
    if arms is None and assignment is None:
        return views, impressions, assignment, notes
    wanted = [str(a) for a in arms] if arms is not None else sorted(assignment["arm"].unique())
    have = set(assignment["arm"]) if assignment is not None else set(views["arm"])
    missing = [a for a in wanted if a not in have]
    if missing:
        where = "assignment.csv" if assignment is not None else "the views"
        raise RecsysError(f"arms: {', '.join(missing)} not in {where} (its arms: "
                          f"{', '.join(sorted(have))})")  # fmt: skip
    parts = {"views": views, "impressions": impressions, "readers assigned": assignment}
    for name, frame in parts.items():
        if frame is None or "arm" not in frame:
            continue
        outside = ~frame["arm"].isin(wanted).to_numpy()
        if outside.any():
            others = ", ".join(sorted(frame.loc[outside, "arm"].unique())[:5])
            notes.append(f"{int(outside.sum()):,} {name} under arm(s) {others}, not an arm of the "
                         "test (e.g. a period before it): left out")  # fmt: skip
            parts[name] = frame[~outside]
    return parts["views"], parts["impressions"], parts["readers assigned"], notes


def srm_warning(srm: dict) -> str:
    shown = ", ".join(f"{a}: {n:,}" for a, n in srm["readers"].items())
    share = ", ".join(f"{a}: {s:.3g}" for a, s in srm["expected_share"].items())
    return (
        f"SAMPLE RATIO MISMATCH: readers per arm {shown} against the expected split {share} "
        f"(chi-square p = {srm['p']:.2g} < {srm['threshold']}): the randomization, the "
        "assignment or the logging is off; do not trust the differences before finding why"
    )


def _known(frame: pd.DataFrame | None, readers: pd.DataFrame) -> pd.DataFrame | None:
    """The rows of ``frame`` whose reader has a row in ``readers``."""
    if frame is None:
        return None
    return frame[readers.index.get_indexer(frame["reader"]) >= 0]


def _canonical_views(views: pd.DataFrame) -> pd.DataFrame:
    """Views as summarize wants them: ids as text, times as UTC datetimes."""
    missing = [c for c in ("reader", "session", "arm") if c not in views]
    if missing:
        raise RecsysError(f"views need the columns reader, session and arm; missing: {missing}")
    views = views.copy()
    for c in ("reader", "session", "arm"):
        views[c] = views[c].astype(str)
    if "time" in views and not isinstance(views["time"].dtype, pd.DatetimeTZDtype):
        views["time"] = parse_times(views["time"], lambda i: f"views row {i}, column 'time'")
    return views


def _canonical_ids(frame: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame | None:
    if frame is None:
        return None
    frame = frame.copy()
    for c in columns:
        if c in frame:
            frame[c] = frame[c].astype(str)
    return frame


def _json_ready(value):
    """Numpy scalars as Python numbers, NaN and infinities as None (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value
