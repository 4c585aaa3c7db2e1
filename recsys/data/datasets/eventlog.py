"""A user's own behavioural log (CSV, TSV, Parquet or JSON lines; one file, several, a glob
pattern or a zip archive) as a dataset, with an optional item table (a CMS export: text,
topic, publication time, length), an optional given test part (``split=predefined``),
candidate lists for the test ranking, and a relevance rule for held-out pairs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from recsys.data.events import (
    PART_VALUES,
    EventReport,
    EventRules,
    Relevance,
    _as_ids,
    events_to_interactions,
    events_to_parts,
    read_event_files,
)
from recsys.data.interactions import Interactions
from recsys.data.items import ItemTable, check_event_items, items_missing, read_items
from recsys.data.tables import (
    FORMATS,
    LogFile,
    cell_at,
    expand_paths,
    read_table,
    require_columns,
    show_cell,
)
from recsys.errors import DataFormatError, RecsysError

ITEM_DEFAULTS = {
    "path": None,
    "format": None,
    "encoding": "utf-8",
    "published_unit": "s",
    "unknown_items": "keep",
    "columns": {"item": "item_id", "title": None, "text": None, "topic": None,
                "published": None, "length": None},
}  # fmt: skip
NO_PARTS = (
    "split=predefined needs the log's own test part: set data.test_path (a file of test "
    "events, same columns) or data.split_column (a column whose values say train or test, "
    "data.split_values); or choose split=random, temporal, leave_one_out or "
    "strong_generalization"
)


class EventLog:
    """Interactions aggregated from an event log by ``recsys.data.events``.

    Args:
        path: the log: a file, a glob pattern (``/logs/2024-*.csv``, files in name order),
            a zip archive (every CSV, TSV, Parquet and JSON-lines member is read), or a list
            of those. Every file needs the mapped columns; row numbers in messages are each
            file's own, the file named (``archive.zip:views.csv``).
        columns: the file's column names for ``user``, ``item`` (required) and
            ``timestamp``, ``event_type``, ``session``, ``dwell``, ``scroll``, ``value``,
            ``source``, ``position``, ``arm`` (optional, null when absent).
        format: ``csv``, ``tsv``, ``parquet`` or ``jsonl``; null infers it from each file's
            suffix.
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
        event_type_from_file: each event's type is its file's name without the suffix
            (``view.csv``, ``addtocart.csv``, ``transaction.csv``: one file per event type),
            for files without an event-type column (``columns.event_type`` must be null).
        test_path: the given test part for ``split=predefined``: a file (or pattern, archive,
            list) of test events with the same columns and format as ``path``.
        split_column: instead, a column of the log saying which part each event is in, with
            the values ``split_values`` (``{train: train, test: test}``; any other value is an
            error naming its file and row).
        candidates_path: a file of (user, item) rows: per test user, the only items their
            test ranking runs over (e.g. 99 sampled items beside the held-out one, as in the
            NCF protocol); null: every item (full ranking). ``candidates_columns``: its
            ``user`` and ``item`` column names (null: the events' names). See
            ``recsys.data.splits.complete_candidates`` for held-out items missing from it.
        relevance: ``event_types`` (e.g. ``[purchase]``) and/or ``min_strength``: which
            validation and test pairs count as relevant (``recsys.data.events.Relevance``);
            training is unchanged.

    With ``test_path`` or ``split_column``, ``load_parts()`` gives ``{"train", "test"}``
    with the same id maps (every user and item of the log) for ``split=predefined``; rules,
    sessions and dwell are worked out on the whole log, then each part's events aggregated.
    A pair with events in both parts is a pair of both; ``split=predefined`` then removes it
    from the test part (counted in a warning): test ranking excludes the user's training
    items, so it could never be found. Without these settings, ``load_parts()`` raises.
    """

    name = "events"

    def __init__(
        self,
        path: str | Sequence[str],
        columns: Mapping[str, str | None],
        format: str | None = None,  # noqa: A002 - the config's word
        timestamp_unit: str = "s",
        rules: Mapping | None = None,
        encoding: str = "utf-8",
        items: Mapping | None = None,
        widget_sources: list[str] | tuple[str, ...] = ("widget",),
        event_type_from_file: bool = False,
        test_path: str | Sequence[str] | None = None,
        split_column: str | None = None,
        split_values: Mapping[str, str] = MappingProxyType(PART_VALUES),
        candidates_path: str | None = None,
        candidates_columns: Mapping[str, str | None] = MappingProxyType(
            {"user": None, "item": None}
        ),
        relevance: Mapping = MappingProxyType({"event_types": None, "min_strength": None}),
    ) -> None:
        self.path = Path(path) if isinstance(path, str | Path) else [str(p) for p in path]
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
        self.event_type_from_file = bool(event_type_from_file)
        if test_path is not None and split_column is not None:
            raise RecsysError(
                "data.test_path and data.split_column both give the test part: set one of them"
            )
        if split_column is not None and "part" in self.columns:
            raise RecsysError("give the split column as data.split_column, not data.columns")
        self.test_path = test_path
        self.split_column = split_column
        self.split_values = {str(k): str(v) for k, v in dict(split_values or PART_VALUES).items()}
        self.candidates_path = candidates_path
        self.candidates_columns = {"user": None, "item": None, **dict(candidates_columns or {})}
        if set(self.candidates_columns) != {"user", "item"}:
            raise RecsysError(
                "data.candidates_columns takes user and item, got "
                f"{sorted(self.candidates_columns)}"
            )
        known = ("event_types", "min_strength")
        unknown = set(relevance or {}) - set(known)
        if unknown:
            raise RecsysError(
                f"unknown data.relevance setting(s) {sorted(unknown)}; known: {', '.join(known)}"
            )
        self.relevance = Relevance(**dict(relevance or {}))
        self.report: EventReport | None = None
        self._table: ItemTable | None = None
        self._missing_events = 0  # events on items the item table lacks
        self._files: list[LogFile] | None = None
        self._test_files: list[LogFile] | None = None
        self._events: pd.DataFrame | None = None

    @property
    def source(self) -> str:
        """The log as its setting names it (for messages)."""
        return str(self.path) if isinstance(self.path, Path) else ", ".join(self.path)

    @property
    def given_parts(self) -> bool:
        """Whether the log gives its own test part (``test_path`` or ``split_column``)."""
        return self.test_path is not None or self.split_column is not None

    def files(self) -> list[LogFile]:
        """The log's files (``path`` expanded: patterns, archives, lists), then the test
        part's (``test_path``)."""
        if self._files is None:
            self._files = expand_paths(self.path, "event log", "data.path")
            self._test_files = []
            if self.test_path is not None:
                self._test_files = expand_paths(self.test_path, "test event log", "data.test_path")
            overlap = set(self._files) & set(self._test_files)
            if overlap:
                raise RecsysError(
                    f"{sorted(map(str, overlap))[0]} is named by both data.path and "
                    "data.test_path: give the test events a file of their own"
                )
        return [*self._files, *self._test_files]

    def source_files(self) -> list[Path]:
        """Every file on disk the data is read from (a zip archive for its members): the
        data cache keys on their sizes and times."""
        paths = [f.path for f in self.files()]
        for extra in (self.candidates_path, self.items.get("path")):
            if extra:
                paths.append(Path(extra))
        return list(dict.fromkeys(paths))

    def events(self) -> pd.DataFrame:
        """The validated event log (``recsys.data.events.read_event_files``), a DataFrame
        (a copy: the log is read once); with a given test part, the column ``part``
        (``train`` / ``test``). With an item table whose ids are text where the events' are
        integers (or the other way), both are compared as text."""
        if self._events is None:
            files = self.files()
            columns = dict(self.columns)
            if self.split_column is not None:
                columns["part"] = self.split_column
            file_parts = None
            if self.test_path is not None:
                file_parts = ["train"] * len(self._files) + ["test"] * len(self._test_files)
            events = read_event_files(
                files,
                columns,
                self.format,
                self.timestamp_unit,
                self.encoding,
                self.event_type_from_file,
                self.split_values,
                file_parts,
            )
            table = self.item_table()
            text_ids = events["item"].dtype != np.int64
            if table is not None and text_ids != (table.ids.dtype == object):
                events["item"] = events["item"].astype(str)
                frame = table.frame.set_axis(table.frame.index.astype(str))
                self._table = ItemTable(frame, table.source)
            self._events = events
        return self._events.copy()

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

    def _checked_events(self) -> tuple[pd.DataFrame, np.ndarray | None, dict | None, int]:
        """The events after the item table's check (``unknown_items``), the table's item
        ids (a catalogue), its per-item values, and how many events it dropped."""
        events = self.events()
        table = self.item_table()
        if table is None:
            return events, None, None, 0
        policy = self.items["unknown_items"]
        if policy == "error" and "file" in events:  # name the file of the first unknown item
            for name, part in events.groupby("file", sort=False, observed=True):
                try:
                    check_event_items(table, part["item"], part["row"], policy)
                except DataFormatError as e:
                    raise DataFormatError(f"{name}: {e}") from None
        keep = check_event_items(table, events["item"], events["row"], policy)
        self._missing_events = int(items_missing(table, events["item"]).sum())
        values = {"length": table.frame["length"]} if "length" in table.frame else None
        return events[keep], table.ids, values, int((~keep).sum())

    def load(self) -> Interactions:
        """Every event (a given test part's too) aggregated into one Interactions."""
        events, catalogue, values, dropped = self._checked_events()
        data, self.report = events_to_interactions(
            events, self.rules, self.source, catalogue, values
        )
        self._count_dropped(dropped)
        return data

    def load_parts(self) -> dict[str, Interactions]:
        """``{"train": ..., "test": ...}`` from ``test_path`` or ``split_column``, with the
        same id maps (every user and item of the log, and of the item table); RecsysError
        saying what to set without either."""
        if not self.given_parts:
            raise RecsysError(NO_PARTS)
        events, catalogue, values, dropped = self._checked_events()
        parts, self.report = events_to_parts(events, self.rules, self.source, catalogue, values)
        self._count_dropped(dropped)
        return parts

    def _count_dropped(self, dropped: int) -> None:
        self.report.items_missing_from_table = self._missing_events
        if dropped:
            self.report.dropped["events on items missing from the item table"] = dropped
            self.report.events_read += dropped

    def load_candidates(self, user_ids: np.ndarray, item_ids: np.ndarray) -> Interactions | None:
        """The test candidates of ``candidates_path`` on the data's id maps (None without
        it): DataFormatError naming the file, row and column for a missing column, a missing
        value, or a user or item the log does not have."""
        if self.candidates_path is None:
            return None
        names = {r: self.candidates_columns[r] or self.columns[r] for r in ("user", "item")}
        src = LogFile(Path(self.candidates_path), None, "data.candidates_path")
        fmt = None if src.suffix in FORMATS else self.format  # its own suffix, else the log's
        frame, fmt = read_table(src, fmt, self.encoding, list(names.values()), "candidates file")
        settings = {r: f"data.candidates_columns.{r}" for r in names}
        require_columns(frame, src, names, settings, "candidates")
        index = {}
        for role, known in (("user", user_ids), ("item", item_ids)):
            column = frame[names[role]]
            missing = np.flatnonzero(column.isna().to_numpy())
            if len(missing):
                where = cell_at(src, int(missing[0]) + 1, names[role], fmt)
                raise DataFormatError(f"{where}: the {role} is missing")
            ids = _as_ids(column, lambda i, n=names[role]: cell_at(src, i + 1, n, fmt))
            catalogue = pd.Index(known)
            if not (ids.dtype == np.int64 and known.dtype.kind == "i"):  # compared as text
                ids, catalogue = ids.astype(str), catalogue.astype(str)
            pos = catalogue.get_indexer(ids.to_numpy())
            unknown = np.flatnonzero(pos < 0)
            if len(unknown):
                i = int(unknown[0])
                raise DataFormatError(
                    f"{cell_at(src, i + 1, names[role], fmt)}: {role} "
                    f"{show_cell(column.iloc[i])} is not a {role} of the event log "
                    f"({len(unknown):,} candidate rows name {role}s it does not have; with a "
                    "filter, it may have dropped them)"
                )
            index[role] = pos
        return Interactions.from_arrays(
            user_ids[index["user"]], item_ids[index["item"]], user_ids=user_ids, item_ids=item_ids
        )

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
