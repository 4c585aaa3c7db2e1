"""A user's own behavioural log (CSV, TSV, Parquet or JSON lines) as a dataset."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from recsys.data.events import EventReport, EventRules, events_to_interactions, read_events
from recsys.data.interactions import Interactions


class EventLog:
    """Interactions aggregated from an event log by ``recsys.data.events``.

    Args:
        path: the log file.
        columns: the file's column names for ``user``, ``item``, ``timestamp`` (required)
            and ``event_type``, ``session``, ``dwell``, ``scroll``, ``value`` (optional, null
            when absent).
        format: ``csv``, ``tsv``, ``parquet`` or ``jsonl``; null infers it from the suffix.
        timestamp_unit: unit of numeric timestamps (``s``, ``ms``, ...).
        encoding: the file's text encoding (CSV, TSV, JSON lines).
        rules: ``EventRules`` arguments (sessions, bounces, event weights, bots, strength).
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
    ) -> None:
        self.path = Path(path)
        self.columns = dict(columns)
        self.format = format
        self.timestamp_unit = timestamp_unit
        self.encoding = encoding
        self.rules = EventRules(**dict(rules or {}))
        self.report: EventReport | None = None

    def source_files(self) -> list[Path]:
        return [self.path]

    def events(self):
        """The validated event log (``recsys.data.events.read_events``), a DataFrame."""
        return read_events(self.path, self.columns, self.format, self.timestamp_unit, self.encoding)

    def load(self) -> Interactions:
        data, self.report = events_to_interactions(self.events(), self.rules, str(self.path))
        return data
