"""Public bandit logs in the shape of the Open Bandit Dataset (Saito et al. 2020, "Open Bandit
Dataset and Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation"), read into
the impressions frame that ``recsys.evaluation.off_policy.estimate`` takes.

An OBD file (``{behavior_policy}/{campaign}.csv``, e.g. ``random/all/all.csv``) has one row
per impression of one item in one slot of a three-slot widget: an unnamed first column (the
row number), ``timestamp``, ``item_id`` (the item's index), ``position`` (1, 2, 3: left,
centre, right), ``click`` (0/1), ``propensity_score`` (the behaviour policy's probability of
that item at that position; the dataset's README calls it ``action_prob``), then the user's
context: ``user_feature_0`` .. ``user_feature_3`` (hashed categories) and
``user-item_affinity_0`` .. (one per item).

How it maps onto the impressions frame:

- ``position``: 0-based, ``position - first_position`` (OBD's 1, 2, 3 become 0, 1, 2);
- ``article``: ``item_id`` (int64 when every id is a plain integer, as OBD's indices are,
  else text: target slates must name the articles with the same type);
- ``clicked``: ``click``; ``propensity``: ``propensity_score`` (else ``action_prob``);
  ``time``: ``timestamp`` (UTC) when the file has it;
- ``context``: one per row (0, 1, ... over all the files read, in order). OBD publishes each
  (item, position) of a shown widget as a row of its own, with its own timestamp and no key
  joining the three rows of one widget, so each row is a round with its own context and one
  logged position. The per-position estimators of ``off_policy`` then average position s over
  the rows showing slot s (``n_s``) and sum the positions: their ``value`` is the expected
  clicks of the target's three-slot widget, and ``per_impression`` (value / 3) the
  click-through rate per slot, which is what OBP's estimators report (the mean reward per
  row) when the three positions are equally frequent, as in OBD;
- ``source``: the file the row comes from; every other column (the user features and
  affinities) is kept as it is, for target policies and reward models that use them.

Errors (one line) name the file, the row (1-based, with its line for CSV/TSV) and the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.tables import (
    LogFile,
    cell_at,
    expand_paths,
    read_table,
    require_columns,
    show_cell,
)
from recsys.errors import DataFormatError, RecsysError

OBD_COLUMNS = {
    "time": "timestamp",
    "article": "item_id",
    "position": "position",
    "clicked": "click",
    "propensity": "propensity_score",
}
PROPENSITY_ALIASES = ("propensity_score", "action_prob")  # the CSV's name, the README's
OPTIONAL = ("time",)


def read_open_bandit(
    path: str | Path | Sequence,
    *,
    columns: Mapping[str, str | None] | None = None,
    first_position: int = 1,
    fmt: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """The impressions frame (``context``, ``source``, ``time``, ``position``, ``article``,
    ``propensity``, ``clicked``, then the file's other columns) of one or several OBD-shaped
    files (a file, a list, a glob pattern or a zip archive; CSV, TSV, Parquet or JSON lines).

    ``columns``: role -> column name, over the OBD names (``time``: ``timestamp``,
    ``article``: ``item_id``, ``position``: ``position``, ``clicked``: ``click``,
    ``propensity``: ``propensity_score`` or ``action_prob``); ``None`` for ``time`` when
    there is none. ``first_position``: the number of the top slot in the file (1 in OBD).
    DataFormatError naming the file, row and column for a missing column or value, a position
    below ``first_position`` or not whole, a click other than 0/1, a propensity outside
    (0, 1], an item id that is no id or a timestamp that is no time."""
    names = dict(OBD_COLUMNS)
    given = dict(columns or {})
    unknown = set(given) - set(OBD_COLUMNS)
    if unknown:
        raise RecsysError(
            f"unknown bandit-log column role(s) {sorted(unknown)}; the roles are "
            f"{', '.join(OBD_COLUMNS)}"
        )
    names.update(given)
    if not isinstance(first_position, int | np.integer):
        raise RecsysError(f"first_position must be a whole number, got {first_position!r}")
    parts, start = [], 0
    for src in expand_paths(path, "bandit log", "path"):
        part = _read_one(src, names, "propensity" not in given, int(first_position), fmt, encoding)
        part.insert(0, "context", np.arange(start, start + len(part), dtype=np.int64))
        start += len(part)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if len(parts) > 1 and out["article"].dtype != np.int64:
        out["article"] = out["article"].astype(str)  # one type across files
    return out


def _read_one(
    src: LogFile,
    names: dict[str, str | None],
    propensity_default: bool,
    first_position: int,
    fmt: str | None,
    encoding: str,
) -> pd.DataFrame:
    frame, fmt = read_table(src, fmt, encoding, [names["article"]], "bandit log", "bandit_log")
    frame = frame.drop(columns=[c for c in frame.columns if _is_row_number(c)])
    if propensity_default:
        found = [c for c in PROPENSITY_ALIASES if c in frame.columns]
        names = {**names, "propensity": found[0] if found else PROPENSITY_ALIASES[0]}
    wanted = {
        role: name
        for role, name in names.items()
        if name is not None and (role not in OPTIONAL or name in frame.columns)
    }
    settings = {role: f"columns={{{role!r}: ...}}" for role in wanted}
    require_columns(frame, src, wanted, settings, "impressions")

    def where(i: int, role: str) -> str:
        return cell_at(src, i + 1, wanted[role], fmt)

    for role, name in wanted.items():
        missing = frame[name].isna().to_numpy()
        if missing.any():
            raise DataFormatError(f"{where(int(np.flatnonzero(missing)[0]), role)}: empty")

    out = pd.DataFrame(index=frame.index)
    out["source"] = str(src)
    if "time" in wanted:
        raw = frame[wanted["time"]]
        if pd.api.types.is_numeric_dtype(raw):
            times = pd.to_datetime(raw, unit="s", utc=True, errors="coerce")
        else:
            times = pd.to_datetime(raw.astype(str), utc=True, errors="coerce", format="mixed")
        bad = times.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{where(i, 'time')}: {show_cell(raw.iloc[i])} is not a time")
        out["time"] = times

    raw = frame[wanted["position"]]
    pos = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad = ~(np.isfinite(pos) & (pos == np.round(pos)) & (pos >= first_position))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{where(i, 'position')}: {show_cell(raw.iloc[i])} is not a slot number "
            f"{first_position}, {first_position + 1}, ... (the top slot is first_position="
            f"{first_position})"
        )
    out["position"] = (pos - first_position).astype(np.int64)
    out["article"] = _ids(frame[wanted["article"]], lambda i: where(i, "article"))

    raw = frame[wanted["propensity"]]
    prop = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad = ~((prop > 0) & (prop <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{where(i, 'propensity')}: {show_cell(raw.iloc[i])} is not a propensity in (0, 1] "
            "(the logging policy's probability of this item at this position)"
        )
    out["propensity"] = prop

    raw = frame[wanted["clicked"]]
    click = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad = ~((click == 0) | (click == 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(f"{where(i, 'clicked')}: {show_cell(raw.iloc[i])} is not 0 or 1")
    out["clicked"] = click.astype(np.int64)

    rest = [c for c in frame.columns if c not in set(wanted.values()) and c not in out.columns]
    out = pd.concat([out, frame[rest]], axis=1)
    return out.reset_index(drop=True)


def _is_row_number(column) -> bool:
    """The unnamed first column of OBD's CSVs (pandas names it ``Unnamed: 0``)."""
    return str(column) == "" or str(column).startswith("Unnamed: 0")


def _ids(series: pd.Series, where) -> pd.Series:
    """Item ids: int64 when every one is a plain integer, else text; never floats."""
    if pd.api.types.is_integer_dtype(series):
        return series.astype(np.int64)
    if pd.api.types.is_float_dtype(series):
        whole = (series == np.round(series)) & (series.abs() < 2**53)
        if not whole.all():
            i = int(np.flatnonzero(~whole.to_numpy())[0])
            raise DataFormatError(f"{where(i)}: {show_cell(series.iloc[i])} is not an item id")
        return series.astype(np.int64)
    text = series.astype(str).str.strip()
    if text.str.fullmatch(r"-?(0|[1-9][0-9]{0,17})").all():
        return text.astype(np.int64)
    return text
