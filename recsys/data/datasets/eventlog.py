"""A user's own behavioural log (CSV, TSV, Parquet or JSON lines) as a dataset, with an
optional item table (a CMS export: text, topic, publication time, length)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.events import EventReport, EventRules, events_to_interactions, read_events
from recsys.data.interactions import Interactions
from recsys.data.items import ItemTable, check_event_items, read_items
from recsys.errors import RecsysError

ITEM_DEFAULTS = {
    "path": None,
    "format": None,
    "encoding": "utf-8",
    "published_unit": "s",
    "unknown_items": "keep",
    "columns": {"item": "item_id", "title": None, "text": None, "topic": None,
                "published": None, "length": None},
}  # fmt: skip


class EventLog:
    """Interactions aggregated from an event log by ``recsys.data.events``.

    Args:
        path: the log file.
        columns: the file's column names for ``user``, ``item`` (required) and
            ``timestamp``, ``event_type``, ``session``, ``dwell``, ``scroll``, ``value``,
            ``source``, ``position``, ``arm`` (optional, null when absent).
        format: ``csv``, ``tsv``, ``parquet`` or ``jsonl``; null infers it from the suffix.
        timestamp_unit: unit of numeric timestamps (``s``, ``ms``, ...).
        encoding: the file's text encoding (CSV, TSV, JSON lines).
        rules: ``EventRules`` arguments (sessions, bounces, event weights, bots, strength).
        items: the item table (``recsys.data.items``): ``path`` (null: none), ``format``,
            ``encoding``, ``columns`` (``item``, ``title``, ``text``, ``topic``,
            ``published``, ``length``), ``published_unit``, and ``unknown_items`` (events on
            items missing from the table: ``keep``, ``drop`` (both counted) or ``error``).
            Items in the table but never viewed are columns too (candidates); an item's
            length becomes the per-pair feature ``item_length``.
        widget_sources: the ``source`` values that mean the recommendation block (the
            replay's rho is the share of later session views from any other source).
    """

    name = "events"

    def __init__(
        self,
        path: str,
        columns: Mapping[str, str | None],
        format: str | None = None,  # noqa: A002 - the config's word
        timestamp_unit: str = "s",
        rules: Mapping | None = None,
        encoding: str = "utf-8",
        items: Mapping | None = None,
        widget_sources: list[str] | tuple[str, ...] = ("widget",),
    ) -> None:
        self.path = Path(path)
        self.columns = dict(columns)
        self.format = format
        self.timestamp_unit = timestamp_unit
        self.encoding = encoding
        self.rules = EventRules(**dict(rules or {}))
        unknown = set(items or {}) - set(ITEM_DEFAULTS)
        if unknown:
            raise RecsysError(
                f"unknown data.items setting(s) {sorted(unknown)}; known: "
                f"{', '.join(ITEM_DEFAULTS)}"
            )
        self.items = {**ITEM_DEFAULTS, **dict(items or {})}
        self.widget_sources = [str(s) for s in widget_sources]
        self.report: EventReport | None = None
        self._table: ItemTable | None = None

    def source_files(self) -> list[Path]:
        table = self.items.get("path")
        return [self.path, *([Path(table)] if table else [])]

    def events(self) -> pd.DataFrame:
        """The validated event log (``recsys.data.events.read_events``), a DataFrame. With an
        item table whose ids are text where the events' are integers (or the other way), both
        are compared as text."""
        events = read_events(
            self.path, self.columns, self.format, self.timestamp_unit, self.encoding
        )
        table = self.item_table()
        if table is not None and (events["item"].dtype == object) != (table.ids.dtype == object):
            events["item"] = events["item"].astype(str)
            frame = table.frame.set_axis(table.frame.index.astype(str))
            self._table = ItemTable(frame, table.source)
        return events

    def item_table(self) -> ItemTable | None:
        """The item table, read once; None without ``items.path``."""
        if self._table is None and self.items.get("path"):
            self._table = read_items(
                self.items["path"],
                dict(self.items["columns"]),
                self.items["format"],
                self.items["published_unit"],
                self.items["encoding"],
            )
        return self._table

    def load(self) -> Interactions:
        events = self.events()
        table = self.item_table()
        catalogue, values = None, None
        if table is not None:
            keep = check_event_items(
                table, events["item"], events["row"], self.items["unknown_items"]
            )
            dropped = int((~keep).sum())
            events = events[keep]
            catalogue = table.ids
            if "length" in table.frame:
                values = {"length": table.frame["length"]}
        data, self.report = events_to_interactions(
            events, self.rules, str(self.path), catalogue, values
        )
        if table is not None and dropped:
            self.report.dropped["events on items missing from the item table"] = dropped
            self.report.events_read += dropped
        return data

    # -- the item table's columns, for content models, recency and reports ------------------
    def _column(self, role: str, item_ids, fill):
        table = self.item_table()
        return None if table is None else table.column_for(role, item_ids, fill)

    def item_text(self) -> dict | None:
        """Item id -> text (title, topic and text joined); None without a table or text."""
        table = self.item_table()
        text = None if table is None else table.text()
        return text or None

    def item_published(self, item_ids) -> np.ndarray | None:
        """``(len(item_ids),)`` float64 unix seconds of publication (-inf where unknown);
        None without a table or a ``published`` column."""
        values = self._column("published", item_ids, -np.inf)
        return None if values is None else values.astype(np.float64)

    def item_topics(self, item_ids) -> np.ndarray | None:
        """``(len(item_ids),)`` topics ("" where unknown); None without a topic column."""
        values = self._column("topic", item_ids, "")
        return None if values is None else values.astype(str)

    def item_lengths(self, item_ids) -> np.ndarray | None:
        values = self._column("length", item_ids, np.nan)
        return None if values is None else values.astype(np.float64)
