"""An item table (a CMS export): one row per item with its text, topic, publication time and
length, read and validated like an event log (``recsys.data.events``).

Canonical columns (renamed from the user's own names by ``read_items``): ``item`` (required,
unique) and, when mapped, ``title`` and ``text`` (joined into the item's content text),
``topic`` (a section or category), ``published`` (unix seconds, float64) and ``length``
(e.g. words; for dwell relative to the expected reading time). Every other column of the file
is kept as an item feature, under its own name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.events import _as_ids, _parse_times
from recsys.data.tables import FORMATS, cell_at, read_table, require_columns, show_cell
from recsys.errors import DataFormatError, RecsysError

log = logging.getLogger(__name__)

ROLES = ("item", "title", "text", "topic", "published", "length")
UNKNOWN_ITEMS = ("keep", "drop", "error")


@dataclass(frozen=True)
class ItemTable:
    """The validated table: ``frame`` indexed by item id (the ids as the events read them),
    with the mapped canonical columns and the file's other columns."""

    frame: pd.DataFrame
    source: str

    @property
    def ids(self) -> np.ndarray:
        return self.frame.index.to_numpy()

    def text(self) -> dict:
        """Item id -> content text: title and text joined (and the topic, which a text
        encoder then sees as a word); items with none get ""."""
        parts = [c for c in ("title", "topic", "text") if c in self.frame]
        if not parts:
            return {}
        joined = self.frame[parts].fillna("").astype(str).agg(" ".join, axis=1).str.strip()
        return dict(zip(self.ids, joined))

    def column_for(self, role: str, item_ids, fill) -> np.ndarray:
        """``(len(item_ids),)`` values of canonical column ``role`` for ``item_ids`` (``fill``
        where an item is not in the table or has no value); None when the column is absent."""
        if role not in self.frame:
            return None
        values = self.frame[role].reindex(_aligned_index(self.frame.index, item_ids))
        return values.fillna(fill).to_numpy()


def _aligned_index(index: pd.Index, item_ids) -> list:
    """``item_ids`` as keys of ``index``: ids also match by their string form."""
    keys = set(index)
    by_str = {str(k): k for k in index}
    return [i if i in keys else by_str.get(str(i), i) for i in item_ids]


def read_items(
    path: str | Path,
    columns: Mapping[str, str | None],
    fmt: str | None = None,
    published_unit: str = "s",
    encoding: str = "utf-8",
) -> ItemTable:
    """Read and validate an item table (CSV, TSV, Parquet or JSON lines).

    Args:
        path: the file.
        columns: canonical role (``ROLES``) -> the file's column name (None: absent).
        fmt, encoding: as for ``read_events``.
        published_unit: unit of numeric publication times; ISO 8601 strings also work.

    Raises DataFormatError naming the file, row (and line) and column for: a missing mapped
    column, an empty file, a missing or duplicate item id (with the first row of the id), an
    unparseable publication time, a negative or non-numeric length.
    """
    path = Path(path)
    wanted = {k: v for k, v in columns.items() if v is not None}
    unknown = set(wanted) - set(ROLES)
    if unknown:
        raise RecsysError(
            f"unknown item column role(s) {sorted(unknown)} in data.items.columns; known: "
            f"{', '.join(ROLES)}"
        )
    if "item" not in wanted:
        raise RecsysError(f"data.items.columns.item must name the item id column of {path}")
    frame, fmt = read_table(path, fmt, encoding, [wanted["item"]], "item table", "data.items")
    require_columns(frame, path, wanted, {r: f"data.items.columns.{r}" for r in wanted}, "items")

    where = {r: (lambda i, n=n: cell_at(path, i + 1, n, fmt)) for r, n in wanted.items()}
    item = frame[wanted["item"]]
    if item.isna().any():
        i = int(np.flatnonzero(item.isna().to_numpy())[0])
        raise DataFormatError(f"{where['item'](i)}: the item id is missing")
    ids = _as_ids(item, where["item"])
    repeated = ids.duplicated(keep=False).to_numpy()
    if repeated.any():
        rows = np.flatnonzero(repeated)
        first = rows[0]
        second = rows[1:][ids.to_numpy()[rows[1:]] == ids.iloc[first]][0]
        raise DataFormatError(
            f"{where['item'](int(second))}: item id {show_cell(ids.iloc[first])} is also on row "
            f"{first + 1}; an item table has one row per item ({int(ids.duplicated().sum())} "
            "repeated id(s) in all): remove the duplicates"
        )
    out = pd.DataFrame(index=pd.Index(ids.to_numpy(), name="item"))
    for role in ("title", "text", "topic"):
        if role in wanted:
            values = frame[wanted[role]]
            out[role] = np.where(values.isna(), "", values.astype(str)).astype(object)
    if "published" in wanted:
        raw = frame[wanted["published"]]
        missing = raw.isna()
        if pd.api.types.is_datetime64_any_dtype(raw):
            times = pd.DataFrame({"timestamp": raw.where(~missing, pd.Timestamp(0, tz="UTC"))})
        else:  # an unknown time: -inf below
            times = pd.DataFrame({"timestamp": raw.astype(object).where(~missing, 0)})
        seconds = _parse_times(times, path, wanted["published"], fmt, published_unit)
        out["published"] = np.where(missing.to_numpy(), -np.inf, seconds.astype(np.float64))
    if "length" in wanted:
        raw = frame[wanted["length"]]
        length = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = (np.isnan(length) & raw.notna().to_numpy()) | (length < 0) | np.isinf(length)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"{where['length'](i)}: length must be a non-negative number (e.g. words), "
                f"got {show_cell(raw.iloc[i])}"
            )
        out["length"] = length
    for name in frame.columns:
        if name not in wanted.values() and name not in out:
            out[name] = frame[name].to_numpy()
    return ItemTable(out, str(path))


def items_missing(table: ItemTable, event_items: pd.Series) -> np.ndarray:
    """``(len(event_items),)`` bool: True for events on items the table does not have (ids
    also compared by their string form)."""
    known = event_items.isin(table.frame.index) | event_items.astype(str).isin(
        table.frame.index.astype(str)
    )
    return ~known.to_numpy()


def check_event_items(
    table: ItemTable, event_items: pd.Series, rows: pd.Series, policy: str
) -> np.ndarray:
    """``(len(event_items),)`` bool, True for events to keep: events on items missing from the
    table are kept (``keep``, counted in a warning), dropped (``drop``, counted) or an error
    naming the first one's row (``error``)."""
    if policy not in UNKNOWN_ITEMS:
        raise RecsysError(
            f"data.items.unknown_items must be one of {UNKNOWN_ITEMS}, got {policy!r}"
        )
    missing = items_missing(table, event_items)
    if not missing.any():
        return np.ones(len(event_items), dtype=bool)
    n_items = int(event_items[missing].nunique())
    what = (
        f"{int(missing.sum()):,} events on {n_items:,} item(s) missing from the item table "
        f"{table.source} (e.g. {show_cell(event_items[missing].iloc[0])}, event row "
        f"{int(rows.to_numpy()[missing][0])})"
    )
    if policy == "error":
        raise DataFormatError(
            f"{what}; add them to the table or set data.items.unknown_items=keep (or drop)"
        )
    if policy == "drop":
        return ~missing
    log.warning("%s: kept, without text or publication time (data.items.unknown_items)", what)
    return np.ones(len(event_items), dtype=bool)


__all__ = ["FORMATS", "ItemTable", "check_event_items", "items_missing", "read_items"]
