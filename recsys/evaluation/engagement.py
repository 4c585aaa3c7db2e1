"""Engagement analytics of an event log with an item table: how the articles of each topic,
length bucket (and any other column of the item table) are read.

The unit is a view: one event of the log (of ``event_types`` only, when given), after the
log's bot rule (``max_events_per_user``). Sessions come from the log's session column, else
from ``session_gap`` seconds of inactivity (``recsys.data.events.sort_into_sessions``); dwell
from the dwell column, else the time to the reader's next event in the same session (the last
event of a session has none: unknown). For a group ``g`` of views (the views of the articles
whose column value is the group's), with ``b`` = ``bounce_seconds``, ``d_v`` a view's dwell,
``L_i`` an article's length and ``P_g`` the (reader, article) pairs with a view in ``g``:

- ``articles``: distinct articles of ``g`` with at least one view; ``views``: ``|g|``;
  ``readers``: distinct readers with a view in ``g``;
- ``read_rate = #{v in g: d_v known, d_v >= b} / #{v in g: d_v known}``: the share of views
  that are not bounces, among views with a known dwell; ``unknown_dwell = #{v in g: d_v
  unknown}`` is in neither count;
- ``median_dwell = median{d_v: v in g, d_v known}`` (seconds, bounces included);
- ``median_dwell_per_100_words = median{100 d_v / L_i(v): v in g, d_v known, L_i(v) > 0}``
  (seconds per 100 length units: words for a CMS's word count);
- ``scroll = mean{scroll_v: v in g, scroll_v known}``, only when the log has a scroll column;
- ``repeat_visits = #{(u, i) in P_g: views of (u, i) in more than one session} / |P_g|``;
- ``continued = #{v in g: another view follows v in its session} / |g|``: the share of the
  group's views after which the reader went on to another article in the same session.

Without sessions (a log with neither times nor a session column) ``repeat_visits`` and
``continued`` are unknown (NaN). Each rate has a 95% interval (``*_low``, ``*_high``): a
percentile bootstrap over the group's readers (``recsys.evaluation.significance.
bootstrap_ratio_ci``): the readers are resampled with replacement ``resamples`` times and the
rate recomputed as ``sum_u num_u / sum_u den_u`` from each reader's own counts (reads and
views with a known dwell; repeated and all pairs; continued and all views), and the 2.5% and
97.5% quantiles of those rates kept. Readers, not views, are the unit, because one reader's
views are not independent of each other.

Groups: ``topic`` (the item table's topic or section), ``length`` (buckets of the table's
lengths: equal-count buckets cut at its quantiles, or given edges) and any other column of the
table. Views of articles missing from the table, or without a value, form the group
``(unknown)``. The first row, ``all``, is every view.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pandas as pd

from recsys.data.datasets.publisher_sim import SECTIONS, PublisherSimulator
from recsys.data.events import inferred_dwell, sort_into_sessions
from recsys.errors import RecsysError
from recsys.evaluation.significance import bootstrap_ratio_ci

log = logging.getLogger(__name__)

UNKNOWN = "(unknown)"
RATES = ("read_rate", "repeat_visits", "continued")
LENGTH_LABELS = ("short", "medium", "long")


# -- the inputs ---------------------------------------------------------------------------
def views_of(
    events: pd.DataFrame,
    session_gap: float = 1800.0,
    event_types: Sequence[str] | None = None,
    max_events_per_user: int | None = None,
) -> tuple[pd.DataFrame, bool]:
    """The views of validated events (canonical columns, ``recsys.data.events``) with their
    session and dwell: a frame of ``user``, ``item``, ``session`` (an integer per session),
    ``dwell`` (seconds, NaN: unknown), ``continued`` (another view follows in the same
    session) and ``scroll`` where the log has it; and whether sessions are known (times or a
    session column). Sessions and inferred dwell are worked out on every event, as the
    training pipeline does, before ``event_types`` keeps the views; users with more than
    ``max_events_per_user`` events are dropped (bots)."""
    ev = events
    if max_events_per_user is not None:
        per_user = ev.groupby("user", sort=False)["item"].transform("size")
        bots = per_user > max_events_per_user
        if bots.any():
            log.warning("dropped %d events of %d users with more than %d events "
                        "(max_events_per_user)", int(bots.sum()),
                        ev.loc[bots, "user"].nunique(), max_events_per_user)  # fmt: skip
        ev = ev[~bots]
    timed = "timestamp" in ev
    known_sessions = timed or "session" in ev
    ev, new = sort_into_sessions(ev, session_gap)
    session = np.cumsum(new) - 1
    if "dwell" in ev:
        dwell = ev["dwell"].to_numpy(dtype=np.float64)
    elif timed:
        dwell = inferred_dwell(ev["timestamp"].to_numpy(), new)
    else:
        dwell = np.full(len(ev), np.nan)
    keep = np.ones(len(ev), dtype=bool)
    if event_types is not None:
        if "event_type" not in ev:
            raise RecsysError(
                "event_types names the views' event types, but the log has no event-type "
                "column: set data.columns.event_type, or event_types=null (every event a view)"
            )
        types = [str(t) for t in event_types]
        keep = ev["event_type"].isin(types).to_numpy()
        if not keep.any():
            raise RecsysError(
                f"no event is of the types {types} (event_types); the log's types: "
                f"{', '.join(sorted(ev['event_type'].unique()))}"
            )
    s = session[keep]
    continued = np.append(s[1:] == s[:-1], False)  # the next view is of the same session
    out = pd.DataFrame(
        {
            "user": ev["user"].to_numpy()[keep],
            "item": ev["item"].to_numpy()[keep],
            "session": s,
            "dwell": dwell[keep],
            "continued": continued & known_sessions,
        }
    )
    if "scroll" in ev:
        out["scroll"] = ev["scroll"].to_numpy(dtype=np.float64)[keep]
    return out, known_sessions


def item_frame(dataset) -> pd.DataFrame | None:
    """The item table of a dataset, indexed by item id (``topic``, ``published``,
    ``length`` and the table's other columns): an event log's ``item_table()``; for
    ``data=publisher_sim`` the simulator's articles, each with its main topic named as its
    export's section; None for a dataset without one."""
    if isinstance(dataset, PublisherSimulator):
        truth = dataset.truth
        main = truth.topics.argmax(1)
        names = [SECTIONS[t % len(SECTIONS)] + ("" if t < len(SECTIONS) else str(t)) for t in main]
        return pd.DataFrame(
            {"topic": names, "published": truth.published, "length": truth.length_words},
            index=pd.Index(np.arange(len(main)), name="item"),
        )
    table = dataset.item_table() if hasattr(dataset, "item_table") else None
    return None if table is None else table.frame


# -- groups -------------------------------------------------------------------------------
def length_edges_of(
    lengths: np.ndarray, labels: Sequence[str], edges: Sequence[float] | None = None
) -> np.ndarray:
    """The ``len(labels) - 1`` cut points of the length buckets: ``edges`` as given, else the
    quantiles ``k / len(labels)`` of the known lengths (``method="higher"``: lengths that
    occur, the next one up), so that the buckets hold about equally many articles of the
    table (ties can leave a bucket empty: it is left out). A length ``L`` is in bucket ``k``
    where ``edges[k-1] <= L < edges[k]``."""
    if len(labels) < 1:
        raise RecsysError("length_buckets needs at least one label, e.g. [short, medium, long]")
    if edges is not None:
        cut = np.asarray(list(edges), dtype=np.float64)
        if len(cut) != len(labels) - 1 or (np.diff(cut) <= 0).any():
            raise RecsysError(
                f"length_edges must be {len(labels) - 1} increasing numbers for the "
                f"{len(labels)} length_buckets {list(labels)}, got {list(edges)}"
            )
        return cut
    known = lengths[np.isfinite(lengths)]
    if len(known) == 0:
        return np.full(len(labels) - 1, np.nan)
    q = np.arange(1, len(labels)) / len(labels)
    return np.quantile(known, q, method="higher").astype(np.float64)


def _bucket_names(labels: Sequence[str], edges: np.ndarray, unit: str) -> list[str]:
    def show(x: float) -> str:
        return f"{x:,.0f}" if float(x).is_integer() or abs(x) >= 100 else f"{x:.3g}"

    if len(labels) == 1:
        return [str(labels[0])]
    names = []
    for k, label in enumerate(labels):
        if k == 0:
            names.append(f"{label} (< {show(edges[0])} {unit})")
        elif k == len(labels) - 1:
            names.append(f"{label} (>= {show(edges[-1])} {unit})")
        else:
            names.append(f"{label} ({show(edges[k - 1])} to < {show(edges[k])} {unit})")
    return names


def item_groups(
    items: pd.DataFrame,
    by: Sequence[str],
    length_labels: Sequence[str] = LENGTH_LABELS,
    length_edges: Sequence[float] | None = None,
    length_unit: str = "words",
) -> dict[str, tuple[pd.Series, list[str]]]:
    """Per dimension of ``by``: each article's group (a Series of labels indexed like
    ``items``) and the groups' order where it has one (length buckets: short to long).
    ``length`` is bucketed (``length_edges_of``); every other dimension is a column of the
    table whose values (as text) are the groups; an empty value is ``(unknown)``."""
    out = {}
    for dim in by:
        if dim == "length" and "length" not in items:
            log.warning("the item table has no length column (data.items.columns.length): "
                        "no length buckets")  # fmt: skip
            continue
        if dim not in items:
            raise RecsysError(
                f"by: the item table has no column {dim!r} (its columns: "
                f"{', '.join(map(str, items.columns)) or 'none'})"
            )
        if dim == "length":
            lengths = items["length"].to_numpy(dtype=np.float64)
            edges = length_edges_of(lengths, length_labels, length_edges)
            names = _bucket_names(length_labels, edges, length_unit)
            bucket = np.searchsorted(edges, lengths, side="right") if len(edges) else 0
            bucket = np.where(np.isfinite(lengths), bucket, -1)
            labels = np.where(bucket >= 0, np.array(names, dtype=object)[bucket.clip(0)], UNKNOWN)
            out[dim] = (pd.Series(labels, index=items.index, dtype=object), names)
        else:
            values = items[dim]
            text = values.astype(str).where(values.notna() & (values.astype(str) != ""), UNKNOWN)
            out[dim] = (text.astype(object), [])
    return out


# -- the table ----------------------------------------------------------------------------
def engagement_table(
    views: pd.DataFrame,
    items: pd.DataFrame,
    by: Sequence[str] = ("topic", "length"),
    bounce_seconds: float = 10.0,
    sessions_known: bool = True,
    length_labels: Sequence[str] = LENGTH_LABELS,
    length_edges: Sequence[float] | None = None,
    length_unit: str = "words",
    resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per group (the module's definitions): ``by`` (the dimension; ``all`` for
    the first row, every view), ``group``, ``articles``, ``views``, ``readers``, ``reads``,
    ``read_rate`` (with ``read_rate_low`` / ``read_rate_high``: the 95% bootstrap interval
    over readers), ``unknown_dwell``, ``median_dwell``, ``median_dwell_per_100_words``
    (NaN without lengths), ``scroll`` (only where ``views`` has it), ``repeat_visits`` and
    ``continued`` (each with its interval). ``views``: ``views_of``; ``items``: the item table
    indexed by item id (``item_frame``). Groups in the order of ``length_labels`` for length,
    else by views (most first), ``(unknown)`` last; groups without views are left out."""
    if resamples < 1:
        raise RecsysError(f"resamples must be at least 1, got {resamples}")
    if len(views) == 0:
        raise RecsysError("the log has no views to analyse (event_types, max_events_per_user?)")
    dwell = views["dwell"].to_numpy(dtype=np.float64)
    known = ~np.isnan(dwell)
    read = known & (dwell >= bounce_seconds)
    keys = _aligned(items.index, views["item"].to_numpy())
    length = items["length"] if "length" in items else pd.Series(np.nan, index=items.index)
    per_word = 100.0 * dwell / length.reindex(keys).to_numpy(dtype=np.float64)
    per_word[~np.isfinite(per_word)] = np.nan  # unknown or zero lengths
    user, _ = pd.factorize(views["user"], sort=False)
    item, _ = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    # (reader, article) pairs: each view's pair, and one view of each (its reader and group)
    code = user.astype(np.int64) * (int(item.max()) + 1) + item
    _, pair_view, pair = np.unique(code, return_index=True, return_inverse=True)
    per_pair = pd.DataFrame({"pair": pair, "session": views["session"].to_numpy()})
    pair_sessions = per_pair.drop_duplicates().groupby("pair").size().to_numpy()
    repeated = (pair_sessions > 1).astype(np.float64)
    continued = views["continued"].to_numpy(dtype=np.float64)
    scroll = views["scroll"].to_numpy(np.float64) if "scroll" in views else None

    def row(dim: str, group: str, members: np.ndarray) -> dict:
        pairs = members[pair_view]
        readers, u = np.unique(user[members], return_inverse=True)
        n = len(readers)
        pu = np.searchsorted(readers, user[pair_view[pairs]])

        def rate(num: np.ndarray, den: np.ndarray, ids: np.ndarray, name: str, ok: bool) -> dict:
            if not ok or den.sum() == 0:
                return {name: np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
            num_u = np.bincount(ids, num, minlength=n)
            den_u = np.bincount(ids, den, minlength=n)
            lo, hi = bootstrap_ratio_ci(num_u, den_u, resamples=resamples, seed=seed)
            return {name: float(num.sum() / den.sum()), f"{name}_low": lo, f"{name}_high": hi}

        d = dwell[members & known]
        w = per_word[members]
        w = w[~np.isnan(w)]
        out = {
            "by": dim,
            "group": group,
            "articles": int(len(np.unique(item[members]))),
            "views": int(members.sum()),
            "readers": int(n),
            "reads": int(read[members].sum()),
            **rate(read[members].astype(np.float64), known[members].astype(np.float64), u,
                   "read_rate", True),
            "unknown_dwell": int((members & ~known).sum()),
            "median_dwell": float(np.median(d)) if len(d) else np.nan,
            "median_dwell_per_100_words": float(np.median(w)) if len(w) else np.nan,
        }  # fmt: skip
        if scroll is not None:
            s = scroll[members]
            s = s[~np.isnan(s)]
            out["scroll"] = float(s.mean()) if len(s) else np.nan
        out.update(rate(repeated[pairs], np.ones(int(pairs.sum())), pu, "repeat_visits",
                        sessions_known))  # fmt: skip
        out.update(rate(continued[members], np.ones(int(members.sum())), u, "continued",
                        sessions_known))  # fmt: skip
        return out

    rows = [row("all", "all", np.ones(len(views), dtype=bool))]
    groups = item_groups(items, by, length_labels, length_edges, length_unit)
    for dim, (labels, order) in groups.items():
        of_view = labels.reindex(keys).fillna(UNKNOWN).to_numpy(dtype=object)
        counts = pd.Series(of_view).value_counts().sort_index()
        ranked = order or list(counts.sort_values(ascending=False, kind="stable").index)
        names = [g for g in ranked if g in counts.index and g != UNKNOWN]
        if UNKNOWN in counts.index:
            names.append(UNKNOWN)
        for g in names:
            rows.append(row(dim, str(g), of_view == g))
    return pd.DataFrame(rows)


def _aligned(index: pd.Index, item_ids: np.ndarray) -> np.ndarray:
    """``item_ids`` as keys of ``index`` (ids also match by their string form), an object
    array; ids the table lacks stay as they are."""
    if index.dtype == object and len(item_ids) and not isinstance(item_ids[0], str):
        by_str = {str(k): k for k in index}
        return np.array([by_str.get(str(i), i) for i in item_ids], dtype=object)
    if index.dtype != object and len(item_ids) and isinstance(item_ids[0], str):
        by_str = {str(k): k for k in index}
        return np.array([by_str.get(i, i) for i in item_ids], dtype=object)
    return np.asarray(item_ids, dtype=object)


# -- the table as text --------------------------------------------------------------------
def _num(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def _ci(r: pd.Series, name: str) -> str:
    v = r[name]
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    return f"{v:.3f} [{r[f'{name}_low']:.3f}, {r[f'{name}_high']:.3f}]"


def to_markdown(table: pd.DataFrame, bounce_seconds: float) -> str:
    """The table as Markdown: counts, rates with their 95% intervals, dwell in seconds."""
    head = ["by", "group", "articles", "views", "readers",
            f"read rate (dwell >= {bounce_seconds:g} s) [95%]", "unknown dwell",
            "median dwell (s)", "median dwell per 100 words (s)"]  # fmt: skip
    if "scroll" in table:
        head.append("mean scroll")
    head += ["repeat visits [95%]", "sessions continued [95%]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [str(r["by"]), str(r["group"]).replace("|", "\\|"), f"{r['articles']:,}",
                 f"{r['views']:,}", f"{r['readers']:,}", _ci(r, "read_rate"),
                 f"{r['unknown_dwell']:,}", _num(r["median_dwell"]),
                 _num(r["median_dwell_per_100_words"])]  # fmt: skip
        if "scroll" in table:
            cells.append(_num(r["scroll"], 3))
        cells += [_ci(r, "repeat_visits"), _ci(r, "continued")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- the figure ---------------------------------------------------------------------------
def _nice_top(x: float) -> tuple[float, float]:
    """An axis end at or above ``x`` and its tick step (1, 2 or 5 times a power of ten)."""
    if not x > 0 or not math.isfinite(x):
        return 1.0, 0.25
    raw = x / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return step * math.ceil(x / step - 1e-9), step


def to_svg(table: pd.DataFrame, title: str, bounce_seconds: float) -> str:
    """The table as a figure (SVG, hand-written XML): per group a horizontal bar of the read
    rate with its 95% interval as a whisker (left panel, 0 to 1) and a bar of the median
    dwell (right panel, seconds), groups under a heading per dimension; axis labels, ticks and
    the title. Each read-rate bar is a ``rect`` of class ``read-rate``, each dwell bar one of
    class ``dwell``, both with the group in ``data-group``."""
    label_w, gap, rate_w, dwell_w, row_h = 300, 40, 320, 260, 18
    x_rate = label_w + 10
    x_dwell = x_rate + rate_w + gap + 30
    top = 78
    rows: list[tuple[str, pd.Series | None]] = []
    for dim, part in table.groupby("by", sort=False):
        if dim == "all":
            rows.append(("all views", part.iloc[0]))
            continue
        rows.append((f"by {dim}", None))
        rows.extend((str(r["group"]), r) for _, r in part.iterrows())
    height = top + row_h * len(rows) + 70
    width = x_dwell + dwell_w + 70
    dwell_top, dwell_step = _nice_top(float(np.nanmax(table["median_dwell"].to_numpy(float)))
                                      if table["median_dwell"].notna().any() else 0.0)  # fmt: skip

    def text(x, y, s, anchor="start", size=12, weight="normal", fill="#222") -> str:
        return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
                f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>')  # fmt: skip

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        text(width / 2, 24, title, "middle", 16, "bold"),
        text(x_rate + rate_w / 2, 50, f"read rate: views with dwell >= {bounce_seconds:g} s, "
             "95% interval", "middle", 12, "bold"),
        text(x_dwell + dwell_w / 2, 50, "median dwell (seconds)", "middle", 12, "bold"),
    ]  # fmt: skip
    bottom = top + row_h * len(rows)
    for frac in np.linspace(0, 1, 5):  # read-rate grid and ticks
        x = x_rate + frac * rate_w
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" '
                   f'stroke="#ddd" stroke-width="1"/>')  # fmt: skip
        out.append(text(x, bottom + 16, f"{frac:.2f}", "middle", 11))
    ticks = np.arange(0, dwell_top + dwell_step / 2, dwell_step)
    for t in ticks:
        x = x_dwell + t / dwell_top * dwell_w
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" '
                   f'stroke="#ddd" stroke-width="1"/>')  # fmt: skip
        out.append(text(x, bottom + 16, f"{t:g}", "middle", 11))
    for x0, w in ((x_rate, rate_w), (x_dwell, dwell_w)):
        out.append(f'<line x1="{x0}" y1="{bottom}" x2="{x0 + w}" y2="{bottom}" stroke="#444"/>')
        out.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{bottom}" stroke="#444"/>')
    out.append(text(x_rate + rate_w / 2, bottom + 36, "read rate (share of views)", "middle"))
    out.append(text(x_dwell + dwell_w / 2, bottom + 36, "median dwell (s)", "middle"))
    out.append(text(12, bottom + 58, "groups: article topic, length bucket and other item-table "
                    "columns; bars: value of the group, whiskers: 95% bootstrap interval over "
                    "readers", "start", 10, fill="#555"))  # fmt: skip
    for k, (label, r) in enumerate(rows):
        y = top + k * row_h
        mid = y + row_h / 2
        if r is None:
            out.append(text(label_w, mid + 4, label, "end", 12, "bold"))
            continue
        out.append(text(label_w, mid + 4, f"{label} ({r['views']:,} views)", "end", 11))
        group = quoteattr(label)
        rate = r["read_rate"]
        w = 0.0 if math.isnan(rate) else rate * rate_w
        out.append(f'<rect class="read-rate" data-group={group} x="{x_rate}" y="{y + 3:.1f}" '
                   f'width="{w:.1f}" height="{row_h - 6}" fill="#4c78a8"/>')  # fmt: skip
        if not math.isnan(rate):
            lo = x_rate + r["read_rate_low"] * rate_w
            hi = x_rate + r["read_rate_high"] * rate_w
            out.append(f'<line class="interval" x1="{lo:.1f}" y1="{mid:.1f}" x2="{hi:.1f}" '
                       f'y2="{mid:.1f}" stroke="#111" stroke-width="1.5"/>')  # fmt: skip
            for x in (lo, hi):
                out.append(f'<line x1="{x:.1f}" y1="{mid - 4:.1f}" x2="{x:.1f}" '
                           f'y2="{mid + 4:.1f}" stroke="#111" stroke-width="1.5"/>')  # fmt: skip
            out.append(text(max(hi, x_rate + w) + 4, mid + 4, f"{rate:.2f}", size=10))
        else:
            out.append(text(x_rate + 4, mid + 4, "n/a", size=10))
        dwell = r["median_dwell"]
        dw = 0.0 if math.isnan(dwell) else dwell / dwell_top * dwell_w
        out.append(f'<rect class="dwell" data-group={group} x="{x_dwell}" y="{y + 3:.1f}" '
                   f'width="{dw:.1f}" height="{row_h - 6}" fill="#f58518"/>')  # fmt: skip
        shown = "n/a" if math.isnan(dwell) else f"{dwell:,.0f} s"
        out.append(text(x_dwell + dw + 4, mid + 4, shown, size=10))
    out.append("</svg>")
    return "\n".join(out) + "\n"
