"""From behavioural event logs to interactions: validation, sessions, dwell, bounces, rules,
and aggregation of many events per (user, item) into one strength and per-pair features.

Canonical event columns (renamed from the user's own names by ``read_events``):
``user``, ``item`` and, when present, ``timestamp`` (unix seconds, int64), ``event_type``,
``session``, ``dwell`` (seconds), ``scroll``, ``value``, and the exposure columns
``source`` (where the view came from: ``widget``, ``organic``, ``search``...), ``position``
(in the block that showed it) and ``arm`` (an A/B arm), which stay with the events (the
replay reads them) and are not aggregated. Without timestamps, sessions come
from the session column only (else they are unknown), dwell from the dwell column only, and
whatever needs times (a temporal split, most-recent, the replay) says so. ``row`` keeps each
event's row number in its file (1-based, data rows) for error messages; a log of several
files (a list, a glob pattern, a zip archive: ``expand_paths``, ``read_event_files``) names
each event's file in ``file``, and a log with a given test part says each event's ``part``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

from recsys.data.interactions import FLOAT32_MAX, Interactions, in_order
from recsys.data.tables import (
    LogFile,
    as_file,
    cell_at,
    read_table,
    require_columns,
    show_cell,
)
from recsys.errors import DataFormatError, EmptyDataError, RecsysError

log = logging.getLogger(__name__)

REQUIRED = ("user", "item")
OPTIONAL = ("timestamp", "event_type", "session", "dwell", "scroll", "value")
EXPOSURE = ("source", "position", "arm")  # kept with the events, not aggregated
PART_VALUES = {"train": "train", "test": "test"}  # data.split_values' default
SETTINGS = {"part": "data.split_column"}  # roles set elsewhere than data.columns
STRENGTHS = ("count", "weighted", "visits", "dwell", "value")
NOT_IDS = (list, tuple, dict, set, np.ndarray)  # values of a cell that are no id


def read_events(
    path: str | Path | LogFile,
    columns: Mapping[str, str | None],
    fmt: str | None = None,
    timestamp_unit: str = "s",
    encoding: str = "utf-8",
    part_values: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read a CSV/TSV, Parquet or JSON-lines event log and validate it.

    Args:
        path: the file (a ``LogFile``: also a member of a zip archive).
        columns: canonical name -> the file's column name (None: absent). ``user`` and
            ``item`` are required. ``part`` names a column whose values say which part
            (``train`` or ``test``) each event belongs to (``data.split_column``).
        fmt: ``csv``, ``tsv``, ``parquet`` or ``jsonl``; None infers it from the suffix.
        timestamp_unit: unit of numeric timestamps (``s``, ``ms``, ``us``, ``ns``); string
            timestamps are parsed as ISO 8601 (a time zone is respected, none means UTC).
        encoding: the text encoding of CSV, TSV and JSON-lines files.
        part_values: with a ``part`` column, ``{"train": <value>, "test": <value>}``: the
            values (compared as text) that mean each part; default ``train`` and ``test``.

    Ids (user, item, session) are read as ids: integers where every one is a plain integer
    that fits int64, else strings; never floats (which would merge ids beyond 2^53).

    Raises DataFormatError naming the file, the row (and line) and the column for: a missing
    required column, an empty file, a missing user or item, a list or other non-id value, an
    unparseable, negative or out-of-range timestamp (with the unit the values look like), a
    negative, infinite or missing dwell, a value beyond float32; undecodable bytes (with the
    line and the encoding to set); quoting that joined several lines into one row; a part
    value that is neither the train nor the test value.
    """
    path = as_file(path)
    ids = [columns[r] for r in ("user", "item", "session", "part") if columns.get(r) is not None]
    frame, fmt = read_table(path, fmt, encoding, ids, "event log")

    wanted = {k: v for k, v in columns.items() if v is not None}
    unknown = set(wanted) - set(REQUIRED) - set(OPTIONAL) - set(EXPOSURE) - {"part"}
    if unknown:
        raise RecsysError(f"unknown event column role(s) {sorted(unknown)}")
    for role in REQUIRED:
        if role not in wanted:
            raise RecsysError(f"data.columns.{role} must name the {role} column of {path}")
    settings = {role: SETTINGS.get(role, f"data.columns.{role}") for role in wanted}
    require_columns(frame, path, wanted, settings, "events")

    out = pd.DataFrame({role: frame[name] for role, name in wanted.items()})
    out["row"] = np.arange(1, len(out) + 1)
    for role in ("user", "item"):
        bad = out[role].isna().to_numpy()
        if bad.any():
            r = int(out["row"].to_numpy()[bad][0])
            raise DataFormatError(f"{cell_at(path, r, wanted[role], fmt)}: the {role} is missing")
    for role in ("user", "item", "session"):
        if role in out:
            out[role] = _as_ids(out[role], lambda i, r=role: cell_at(path, i + 1, wanted[r], fmt))
    if "timestamp" in out:
        out["timestamp"] = _parse_times(out, path, wanted["timestamp"], fmt, timestamp_unit)
    if "dwell" in out:
        dwell = pd.to_numeric(out["dwell"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~((dwell >= 0) & np.isfinite(dwell))  # NaN, unparseable, negative, infinite
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"{cell_at(path, i + 1, wanted['dwell'], fmt)}: dwell must be a finite "
                f"non-negative number of seconds, got {show_cell(frame[wanted['dwell']].iloc[i])}"
            )
        out["dwell"] = dwell
    for role in ("scroll", "value"):
        if role in out:
            values = pd.to_numeric(out[role], errors="coerce")
            bad = values.isna() & out[role].notna()
            huge = values.notna() & ~(values.abs() <= FLOAT32_MAX)  # inf, or beyond float32
            if (bad | huge).any():
                i = int(np.flatnonzero((bad | huge).to_numpy())[0])
                what = "not a number" if bad.iloc[i] else f"out of range (|x| > {FLOAT32_MAX:.3g})"
                raise DataFormatError(
                    f"{cell_at(path, i + 1, wanted[role], fmt)}: {what}: "
                    f"{show_cell(frame[wanted[role]].iloc[i])}"
                )
            out[role] = values.astype(np.float64)
    if "event_type" in out:
        out["event_type"] = out["event_type"].astype(str)
    for role in ("source", "arm"):
        if role in out:
            out[role] = out[role].astype(str).where(out[role].notna(), "")
    if "position" in out:
        pos = pd.to_numeric(out["position"], errors="coerce")
        bad = pos.isna() & out["position"].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(
                f"{cell_at(path, i + 1, wanted['position'], fmt)}: a block position must be a "
                f"number, got {show_cell(frame[wanted['position']].iloc[i])}"
            )
        out["position"] = pos.astype(np.float64)
    if "part" in out:
        out["part"] = _parts(
            out["part"], part_values, lambda i: cell_at(path, i + 1, wanted["part"], fmt)
        )
    return out


def read_event_files(
    files: Sequence[LogFile],
    columns: Mapping[str, str | None],
    fmt: str | None = None,
    timestamp_unit: str = "s",
    encoding: str = "utf-8",
    event_type_from_file: bool = False,
    part_values: Mapping[str, str] | None = None,
    file_parts: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The events of several files (``expand_paths``), each read and validated by
    ``read_events``, in one frame; row numbers stay those of each file, and with more than
    one file the column ``file`` (categorical, in the files' order) names each event's file as
    messages show it (``archive.zip:views.csv``). Every file needs the mapped columns.

    ``event_type_from_file``: each event's type is its file's name without the suffix
    (``purchase.csv`` -> ``purchase``), for exports of one file per event type; an error
    when ``columns`` maps an event-type column too. Ids that are integers in one file and
    text in another are all read as text. A file without events (only a header, or empty)
    is skipped with a warning when others have some. ``file_parts``: the part (``train`` or
    ``test``) of each file's events, as the column ``part``."""
    if event_type_from_file and columns.get("event_type") is not None:
        raise RecsysError(
            "data.event_type_from_file takes each event's type from its file's name, and "
            f"data.columns.event_type={columns['event_type']!r} names a column too: set one"
        )
    frames, names = [], [str(f) for f in files]
    for number, f in enumerate(files):
        try:
            ev = read_events(f, columns, fmt, timestamp_unit, encoding, part_values)
        except EmptyDataError as e:
            if len(files) == 1:
                raise
            log.warning("%s; skipped", e)
            continue
        if event_type_from_file:
            ev["event_type"] = f.stem
        if file_parts is not None:
            ev["part"] = np.full(len(ev), file_parts[number], dtype=object)
        if len(files) > 1:
            ev["file"] = pd.Categorical.from_codes(np.full(len(ev), number), categories=names)
        frames.append(ev)
    if not frames:
        raise EmptyDataError(
            f"none of the {len(files)} event log files has events ({', '.join(map(str, files))})"
        )
    for role in ("user", "item", "session"):
        if role in frames[0] and any(f[role].dtype != np.int64 for f in frames):
            for f in frames:
                f[role] = f[role].astype(str)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _parts(raw: pd.Series, values: Mapping[str, str] | None, where) -> np.ndarray:
    """``train`` / ``test`` for each value of a part column; DataFormatError naming the first
    value that is neither."""
    values = {str(k): str(v) for k, v in (values or PART_VALUES).items()}
    if set(values) != {"train", "test"} or values["train"] == values["test"]:
        raise RecsysError(
            f"data.split_values must give two different values for train and test, got {values}"
        )
    text = raw.astype(str).where(raw.notna(), None).to_numpy(dtype=object)
    out = np.where(text == values["train"], "train", np.where(text == values["test"], "test", ""))
    bad = np.flatnonzero(out == "")
    if len(bad):
        i = int(bad[0])
        raise DataFormatError(
            f"{where(i)}: {show_cell(raw.iloc[i])} says neither train ({values['train']!r}) nor "
            f"test ({values['test']!r}); set data.split_values to the column's two values"
        )
    return out.astype(object)


TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
LATEST = 4.1e9  # unix seconds of 2100: later times are taken for a unit mistake
EARLIEST = 1e8  # unix seconds of 1973: a log whose every time is earlier may have the wrong unit


def _check_time_range(numeric: pd.Series, unit: str, where, raw: pd.Series) -> None:
    """DataFormatError for a negative numeric timestamp, or one after 2100 in ``unit`` (with
    the unit its value looks like); a warning when every time is before 1973 and would be
    unix time in another unit."""
    values = numeric.to_numpy(dtype=np.float64)
    seconds = values / TIME_UNITS.get(unit, 1.0)
    negative = np.flatnonzero(seconds < 0)
    if len(negative):
        i = int(negative[0])
        raise DataFormatError(
            f"{where(i)}: negative timestamp {show_cell(raw.iloc[i])}: event times are unix time "
            f"(since 1970) in data.timestamp_unit={unit!r}"
        )
    if len(values) and seconds.max() < EARLIEST:  # relative times are legitimate: a warning
        i = int(np.argmax(values))
        fits = [u for u, f in TIME_UNITS.items() if EARLIEST <= values[i] / f <= LATEST]
        if fits and fits[0] != unit:
            log.warning(
                "%s: every timestamp read in %r is before 1973; if they are unix time in %r, "
                "set data.timestamp_unit=%s", where(i), unit, fits[0], fits[0],
            )  # fmt: skip
    late = np.flatnonzero(seconds > LATEST)
    if len(late):
        i = int(late[0])
        fits = [u for u, f in TIME_UNITS.items() if EARLIEST <= values[i] / f <= LATEST]
        hint = f"; it looks like {fits[0]!r}: set data.timestamp_unit={fits[0]}" if fits else ""
        raise DataFormatError(
            f"{where(i)}: timestamp {show_cell(raw.iloc[i])} read in {unit!r} is after the year "
            f"2100{hint}"
        )


def _as_ids(series: pd.Series, where) -> pd.Series:
    """An id column as ids: int64 where every value is a plain integer (no leading zeros)
    that fits int64, else strings; never floats, which merge ids beyond 2^53. DataFormatError
    for a list, a mapping, a fraction or another value that is no id."""
    if pd.api.types.is_signed_integer_dtype(series):
        return series.astype(np.int64)
    if pd.api.types.is_unsigned_integer_dtype(series):
        return series.astype(np.int64) if series.max() < 2**63 else series.astype(str)
    if pd.api.types.is_float_dtype(series):  # e.g. Parquet: exact only for whole values < 2^53
        whole = (series == np.round(series)) & (series.abs() < 2**53)
        if not whole.all():
            i = int(np.flatnonzero(~whole.to_numpy())[0])
            raise DataFormatError(f"{where(i)}: {show_cell(series.iloc[i])} is not an id")
        return series.astype(np.int64)
    if series.dtype == object:  # e.g. JSON lines: a list or a mapping is no id (text is)
        values = series.to_numpy()
        odd = [i for i, v in enumerate(values) if isinstance(v, NOT_IDS)]
        if odd:
            raise DataFormatError(f"{where(odd[0])}: {show_cell(values[odd[0]])} is not an id")
    text = series.astype(str)
    as_int = _plain_integers(text)
    return text if as_int is None else pd.Series(as_int, index=series.index, name=series.name)


_PLAIN_INTEGER = r"^-?(0|[1-9][0-9]{0,18})$"


def _plain_integers(text: pd.Series) -> np.ndarray | None:
    """int64 values of ``text`` when every value is a plain integer (an optional minus, no
    leading zeros or signs or spaces) that fits int64, else None; by pyarrow's compute
    functions (a regular expression and a checked cast, in C++)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        values = pa.array(text.array)  # pandas' Arrow-backed strings: no copy
    except (TypeError, pa.ArrowInvalid):
        values = None
    if values is None or not (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        values = pa.array(text.to_numpy(dtype=object), type=pa.string())
    if not pc.all(pc.match_substring_regex(values, _PLAIN_INTEGER)).as_py():
        return None
    try:
        return pc.cast(values, pa.int64()).to_numpy()
    except (pa.ArrowInvalid, OverflowError):  # beyond int64
        return None


def _parse_times(frame: pd.DataFrame, path: Path, column: str, fmt: str, unit: str) -> np.ndarray:
    raw = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")
    else:
        numeric = pd.to_numeric(raw, errors="coerce")
        _check_time_range(numeric, unit, lambda i: cell_at(path, i + 1, column, fmt), raw)
        parsed = pd.to_datetime(numeric, unit=unit, utc=True, errors="coerce")
        text = numeric.isna() & raw.notna()
        if text.any():  # ISO 8601 strings (numbers and strings may even be mixed)
            parsed[text] = pd.to_datetime(
                raw[text].astype(str), format="ISO8601", utc=True, errors="coerce"
            )
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{cell_at(path, i + 1, column, fmt)}: cannot parse timestamp {show_cell(raw.iloc[i])} "
            f"(expected unix time in '{unit}' or an ISO 8601 date-time such as "
            "2024-03-01T12:30:00)"
        )
    return (parsed.astype("datetime64[ns, UTC]").astype("int64") // 10**9).to_numpy(np.int64)


@dataclass
class EventRules:
    """How events become interactions.

    Args:
        session_gap: seconds of inactivity after which a user's next event starts a new
            session (used when the log has no session column).
        bounce_seconds: an event with a known dwell below this is a bounce.
        drop_bounces: leave bounces out entirely (counted in the report).
        event_weights: weight of each event type, for ``strength: weighted``
            (e.g. ``{view: 1, like: 4, bookmark: 6, purchase: 10}``).
        unknown_event_types: with ``event_weights``, what to do with other types:
            ``drop`` (counted in the report) or ``error``.
        max_events_per_user: users with more events are taken for bots and dropped (counted).
        strength: the pair's strength: ``count`` (events), ``weighted`` (sum of event
            weights; 1 per event without ``event_weights``), ``visits`` (distinct sessions),
            ``dwell`` (total known dwell seconds) or ``value`` (sum of the value column).
    """

    session_gap: float = 1800.0
    bounce_seconds: float = 10.0
    drop_bounces: bool = False
    event_weights: dict[str, float] | None = None
    unknown_event_types: str = "drop"
    max_events_per_user: int | None = None
    strength: str = "count"

    def __post_init__(self) -> None:
        if self.strength not in STRENGTHS:
            raise RecsysError(f"events strength must be one of {STRENGTHS}, got {self.strength!r}")
        if self.unknown_event_types not in ("drop", "error"):
            raise RecsysError("unknown_event_types must be 'drop' or 'error'")
        if self.event_weights is not None:
            self.event_weights = {str(k): float(v) for k, v in dict(self.event_weights).items()}


@dataclass
class Relevance:
    """Which held-out pairs (validation and test) count as relevant: only those with at least
    one event of ``event_types`` (the per-pair counts ``type:<t>``), and/or a strength of at
    least ``min_strength``; both set: both must hold. Neither set: every held-out pair.
    Training is unchanged; a held-out pair that is not relevant is no hit, and stays
    rankable (it is not excluded as training items are)."""

    event_types: list[str] | None = None
    min_strength: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.event_types, str):
            self.event_types = [self.event_types]
        if self.event_types is not None:
            self.event_types = [str(t) for t in self.event_types]
            if not self.event_types:
                raise RecsysError(
                    "data.relevance.event_types is an empty list: name the event types that "
                    "make a held-out pair relevant, or null for all"
                )
        if self.min_strength is not None:
            self.min_strength = float(self.min_strength)

    @property
    def active(self) -> bool:
        return self.event_types is not None or self.min_strength is not None

    def describe(self) -> str:
        said = []
        if self.event_types is not None:
            said.append(f"an event of type {' or '.join(self.event_types)}")
        if self.min_strength is not None:
            said.append(f"strength >= {self.min_strength:g}")
        return " and ".join(said) or "every pair"

    def check(self, parts: Sequence[Interactions]) -> None:
        """RecsysError for an event type that no pair of ``parts`` has (a typo), or for
        event types without an event-type column."""
        if self.event_types is None:
            return
        known = sorted({k[5:] for p in parts for k in p.features if k.startswith("type:")})
        if not known:
            raise RecsysError(
                "data.relevance.event_types needs the events' types: set data.columns.event_type "
                "(or data.event_type_from_file)"
            )
        unknown = [t for t in self.event_types if t not in known]
        if unknown:
            raise RecsysError(
                f"data.relevance.event_types: {', '.join(map(repr, unknown))} is no event type of "
                f"the log (its types: {', '.join(known)})"
            )

    def mask(self, part: Interactions) -> np.ndarray:
        """``(part.nnz,)`` bool: True for the relevant pairs of ``part``."""
        keep = np.ones(part.nnz, dtype=bool)
        if self.event_types is not None:
            typed = np.zeros(part.nnz, dtype=bool)
            for t in self.event_types:
                if f"type:{t}" in part.features:
                    typed |= part.features[f"type:{t}"] > 0
            keep &= typed
        if self.min_strength is not None:
            keep &= part.matrix.data >= self.min_strength
        return keep


@dataclass
class EventReport:
    """What happened to the events: every dropped row is counted here."""

    events_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    bounces: int = 0
    sessions: int | None = 0  # None: unknown (no timestamps and no session column)
    pairs: int = 0
    zero_strength_pairs: int = 0
    duplicate_rows: int = 0  # rows equal to an earlier row in every column: kept, reported
    items_missing_from_table: int = 0  # events on items the item table lacks (kept or dropped)

    @classmethod
    def from_dict(cls, values: dict) -> EventReport:
        """The report ``dataclasses.asdict`` gave (e.g. kept with a cache entry)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def log(self, source: str) -> None:
        kept = self.events_read - sum(self.dropped.values())
        sessions = "unknown (no timestamps)" if self.sessions is None else f"{self.sessions:,}"
        log.info(
            "%s: %d events read, %d kept, %s sessions, %d bounces, %d (user, item) pairs",
            source,
            self.events_read,
            kept,
            sessions,
            self.bounces,
            self.pairs,
        )
        if self.duplicate_rows:
            log.warning(
                "%s: %d rows repeat an earlier row in every column; each counts as an event "
                "(remove them from the file if they are copies)", source, self.duplicate_rows,
            )  # fmt: skip
        for reason, n in self.dropped.items():
            if n:
                log.warning("%s: dropped %d events: %s", source, n, reason)
        if self.items_missing_from_table and not any("item table" in r for r in self.dropped):
            log.warning(
                "%s: %d events on items missing from the item table, kept",
                source, self.items_missing_from_table,
            )  # fmt: skip
        if self.zero_strength_pairs:
            log.warning(
                "%s: %d pairs have strength 0 and are left out of the interactions",
                source,
                self.zero_strength_pairs,
            )


def sort_into_sessions(ev: pd.DataFrame, session_gap: float) -> tuple[pd.DataFrame, np.ndarray]:
    """``ev`` sorted by user, ``session`` (where the log has that column), timestamp,
    ``file`` and ``row`` (where present), index reset; and ``(len(ev),)`` bool, True where an
    event starts a session: a new user, a new ``session`` value, or, without that column, more
    than ``session_gap`` seconds after the user's previous event."""
    keys = ["user", *(k for k in ("session", "timestamp", "file", "row") if k in ev)]
    columns = [ev[k].to_numpy() for k in keys]
    if in_order(columns):  # e.g. a log exported by user and time: no sort
        ev, user = ev.reset_index(drop=True), columns[0]
    else:
        ev = ev.sort_values(keys, kind="stable").reset_index(drop=True)
        user = ev["user"].to_numpy()
    new = _changes(user)  # ids compared as ids: shift() would make floats
    if "session" in ev:
        new = new | _changes(ev["session"].to_numpy())
    elif "timestamp" in ev:
        t = ev["timestamp"].to_numpy()
        new = new | (np.diff(t, prepend=t[0] if len(t) else 0) > session_gap)
    return ev, new


def _duplicate_rows(ev: pd.DataFrame) -> int:
    """Rows of ``ev`` (sorted by ``sort_into_sessions``) that repeat an earlier row in every
    column but ``row``, ``file`` and ``part`` (a row repeated in another file, overlapping
    exports or in train and test, repeats too). Copies share their user and time, which the
    sort puts next to each other: only rows beside one with the same user and time are
    compared (all of them for a log without times)."""
    columns = ev.drop(columns=["row", "file", "part"], errors="ignore")
    if "timestamp" not in ev or len(ev) < 2:
        return int(columns.duplicated().sum())
    user, t = ev["user"].to_numpy(), ev["timestamp"].to_numpy()
    same = (user[1:] == user[:-1]) & (t[1:] == t[:-1])
    near = np.zeros(len(ev), dtype=bool)
    near[1:] |= same
    near[:-1] |= same
    return int(columns[near].duplicated().sum())


def _changes(values: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: True where a value differs from the one before it (and at 0)."""
    out = np.ones(len(values), dtype=bool)
    out[1:] = values[1:] != values[:-1]
    return out


def inferred_dwell(t: np.ndarray, new_session: np.ndarray) -> np.ndarray:
    """Dwell seconds of events sorted into sessions (``sort_into_sessions``) whose log has
    none: the time to the next event of the same session; NaN (unknown) for a session's last
    event."""
    next_t = np.append(t[1:], 0).astype(np.float64)
    last = np.append(new_session[1:], True)  # the next event starts a new session
    return np.where(last, np.nan, next_t - t)


def group_sums(
    values: np.ndarray,
    group: np.ndarray | None,
    n_groups: int,
    order: np.ndarray | None = None,
    bounds: np.ndarray | None = None,
) -> np.ndarray:
    """``(n_groups,)`` sums of ``values`` (float64, NaN: unknown) by ``group`` (codes 0 to
    ``n_groups - 1``, each used), NaN for a group without a known value; each group's values
    added in row order as ``Series.sum`` adds them (numpy's summation: one by one under 8
    values, numpy itself from 8), so the sums are the same to the last bit as a per-group
    ``sum(min_count=1)``, without a Python call per group. Or, with ``order`` and ``bounds``
    instead of ``group``: group g is ``values[order[bounds[g]:bounds[g + 1]]]``, in that
    order (a stable sort of the rows by group)."""
    if order is None:
        order = np.argsort(group, kind="stable")
        sizes = np.bincount(group, minlength=n_groups)
    else:
        sizes = np.diff(bounds)
    raw = values[order]
    missing = np.isnan(raw)
    v = np.where(missing, 0.0, raw)
    starts = np.zeros(n_groups, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    out = v[starts]
    small = sizes < 8
    for j in range(1, 7):
        adding = np.flatnonzero(small & (sizes > j))
        out[adding] += v[starts[adding] + j]
    for g in np.flatnonzero(~small):
        out[g] = v[starts[g] : starts[g] + sizes[g]].sum()
    known = np.add.reduceat(~missing, starts) > 0 if len(starts) else np.zeros(0, dtype=bool)
    out[~known] = np.nan
    return out


def events_to_interactions(
    events: pd.DataFrame,
    rules: EventRules,
    source: str = "events",
    catalogue: np.ndarray | None = None,
    item_values: dict[str, pd.Series] | None = None,
) -> tuple[Interactions, EventReport]:
    """Aggregate validated events (see ``read_events``) into Interactions.

    ``catalogue``: item ids that are columns even without an event (an item table's items,
    never viewed yet: candidates), beside the events' own items. ``item_values``: per-item
    values (a Series indexed by item id, e.g. ``length``) added as per-pair features under
    ``item_<name>`` (NaN for an item without one).

    Per (user, item) pair: strength per ``rules.strength``; features ``count``, ``visits``
    (distinct sessions with the item: repeat visits), ``dwell`` (sum of known dwell seconds,
    NaN when none is known), ``bounces``, ``weighted``, ``value`` / ``scroll`` (sum / max,
    when those columns exist) and ``type:<t>`` counts per event type; the timestamp is the
    first event's. Dwell, when the log has none, is the time to the user's next event in the
    same session; the last event of a session gets none.
    """
    report = EventReport(events_read=len(events))
    frame, has_types, timed = _sessions_and_weights(events, rules, source, report)
    pairs = _aggregate(frame, ["user", "item"], has_types, timed)
    item_ids = None
    if catalogue is not None:
        item_ids = np.unique(np.concatenate([np.unique(pairs["item"].to_numpy()), catalogue]))
    data = _interactions(pairs, rules, report, item_values, timed, None, item_ids)
    report.log(source)
    return data, report


def events_to_parts(
    events: pd.DataFrame,
    rules: EventRules,
    source: str = "events",
    catalogue: np.ndarray | None = None,
    item_values: dict[str, pd.Series] | None = None,
) -> tuple[dict[str, Interactions], EventReport]:
    """``{"train": ..., "test": ...}``: the events of each ``part`` (a column of ``train`` /
    ``test``) aggregated as ``events_to_interactions`` does, with the same id maps (every
    user and item of the log, and the ``catalogue``) and the same features. Rules, sessions
    and dwell are worked out on the whole log first (a session may run from a training event
    into a test event: the training event's dwell is the time to the test event), so the
    parts differ only in which events each pair counts; a pair with events in both parts is
    a pair of both."""
    report = EventReport(events_read=len(events))
    frame, has_types, timed = _sessions_and_weights(events, rules, source, report)
    pairs = _aggregate(frame, ["part", "user", "item"], has_types, timed)
    user_ids = np.unique(pairs["user"].to_numpy())
    item_ids = np.unique(pairs["item"].to_numpy())
    if catalogue is not None:
        item_ids = np.unique(np.concatenate([item_ids, catalogue]))
    parts = {}
    for name in ("train", "test"):
        rows = pairs[pairs["part"].to_numpy() == name].drop(columns=["part"])
        part = _interactions(rows, rules, report, item_values, timed, user_ids, item_ids)
        parts[name] = part
    report.log(source)
    return parts, report


def _sessions_and_weights(
    events: pd.DataFrame, rules: EventRules, source: str, report: EventReport
) -> tuple[pd.DataFrame, bool, bool]:
    """The events after the rules (bots, unknown event types, bounces; each drop counted in
    ``report``), sorted into sessions, with their dwell, bounce and weight: a frame of
    ``user``, ``item``, ``session``, ``dwell``, ``bounces``, ``weighted`` and, where the log
    has them, ``timestamp``, ``value``, ``scroll``, ``event_type``, ``part``; and whether the
    log has event types and times."""
    ev = events
    if rules.max_events_per_user is not None:
        per_user = ev.groupby("user", sort=False)["item"].transform("size")
        bots = per_user > rules.max_events_per_user
        report.dropped[
            f"{ev.loc[bots, 'user'].nunique()} users with more than "
            f"{rules.max_events_per_user} events (max_events_per_user)"
        ] = int(bots.sum())
        ev = ev[~bots]

    has_types = "event_type" in ev
    if rules.event_weights is not None and not has_types:
        raise RecsysError(
            f"{source}: data.rules.event_weights weighs event types, but no event-type column "
            "is mapped: set data.columns.event_type (or drop event_weights)"
        )
    if rules.event_weights is not None and has_types:
        known = ev["event_type"].isin(list(rules.event_weights))
        if not known.all():
            counts = {k: int(v) for k, v in ev.loc[~known, "event_type"].value_counts().items()}
            if rules.unknown_event_types == "error":
                first = ev.loc[~known].iloc[0]
                where = first["file"] if "file" in ev else source
                raise DataFormatError(
                    f"{where}, row {int(first['row'])}, column 'event_type': event type "
                    f"{first['event_type']!r} has no weight in event_weights "
                    f"(unknown types: {counts})"
                )
            report.dropped[f"event types without a weight: {counts}"] = int((~known).sum())
            ev = ev[known]

    timed = "timestamp" in ev
    ev, new_session = sort_into_sessions(ev, rules.session_gap)
    report.duplicate_rows = _duplicate_rows(ev)
    session_id = np.cumsum(new_session) - 1
    report.sessions = int(new_session.sum()) if timed or "session" in ev else None

    if "dwell" not in ev:  # the time to the next event of the session, where times are known
        unknown = np.full(len(ev), np.nan)
        ev["dwell"] = inferred_dwell(ev["timestamp"].to_numpy(), new_session) if timed else unknown

    dwell = ev["dwell"].to_numpy(dtype=np.float64)
    bounce = dwell < rules.bounce_seconds  # False for unknown (NaN) dwell
    report.bounces = int(bounce.sum())
    if rules.drop_bounces and bounce.any():
        report.dropped[f"bounces (dwell < {rules.bounce_seconds:g} s, drop_bounces)"] = int(
            bounce.sum()
        )
        keep = ~bounce
        ev, session_id, bounce = ev[keep], session_id[keep], bounce[keep]

    weights = np.ones(len(ev))
    if rules.event_weights is not None and has_types:
        codes, types = pd.factorize(ev["event_type"])  # a lookup per type, not per event
        weights = np.asarray([rules.event_weights[t] for t in types], dtype=np.float64)[codes]

    frame = pd.DataFrame(
        {
            "user": ev["user"].to_numpy(),
            "item": ev["item"].to_numpy(),
            "session": session_id,
            "dwell": ev["dwell"].to_numpy(dtype=np.float64),
            "bounces": bounce.astype(np.float64),
            "weighted": weights,
        }
    )
    for role in ("timestamp", "value", "scroll", "event_type", "part"):
        if role in ev:
            frame[role] = ev[role].to_numpy()
    return frame, has_types, timed


def _aggregate(frame: pd.DataFrame, keys: list[str], has_types: bool, timed: bool) -> pd.DataFrame:
    """One row per group of ``keys`` (``user``, ``item``; and ``part``) with the pair's
    features (``events_to_interactions``), the keys as columns, pairs sorted by the keys.

    The events are factorized and stably sorted by pair once, then each feature is one pass
    over the pairs' runs (numba): the same values as pandas' groupby gives them to the bit
    (sums in row order with its compensated summation, the dwell sums by ``group_sums``'
    rule), at a fraction of its time on large logs. ``_aggregate_by_groupby`` is the groupby
    itself, for what this does not take (no events, a missing key, timestamps that are not
    integers, more key combinations than an int64 holds)."""
    n = len(frame)
    codes, uniques = [], []
    for key in keys:
        c, u = pd.factorize(frame[key].to_numpy(), sort=True)
        codes.append(c.astype(np.int64))
        uniques.append(u)
    sizes = [max(len(u), 1) for u in uniques]
    timestamps = frame["timestamp"].to_numpy() if timed else None
    if (
        n == 0
        or float(np.prod(sizes, dtype=np.float64)) >= 2.0**62
        or any((c < 0).any() for c in codes)  # a missing key: groupby leaves it out
        or (timed and (timestamps.dtype.kind not in "iu"))
    ):
        return _aggregate_by_groupby(frame, keys, has_types, timed)
    pair_key = codes[0]
    for c, size in zip(codes[1:], sizes[1:]):
        pair_key = pair_key * size + c
    order = np.argsort(pair_key, kind="stable")
    sorted_key = pair_key[order]
    starts = np.flatnonzero(_changes(sorted_key))
    bounds = np.append(starts, n)
    first = order[starts]
    pairs = {key: u[c[first]] for key, c, u in zip(keys, codes, uniques)}
    counts = np.diff(bounds)
    pairs["count"] = counts
    pairs["visits"] = _runs_of_values(frame["session"].to_numpy()[order], bounds)
    pairs["dwell"] = group_sums(frame["dwell"].to_numpy(), None, len(starts), order, bounds)
    pairs["bounces"] = _compensated_sums(frame["bounces"].to_numpy(np.float64)[order], bounds)
    pairs["weighted"] = _compensated_sums(frame["weighted"].to_numpy(np.float64)[order], bounds)
    if timed:
        pairs["timestamp"] = np.minimum.reduceat(timestamps[order], starts)
    if "value" in frame:
        pairs["value"] = _compensated_sums(frame["value"].to_numpy(np.float64)[order], bounds)
    if "scroll" in frame:
        pairs["scroll"] = _maxima(frame["scroll"].to_numpy(np.float64)[order], bounds)
    if has_types:
        type_codes, names = pd.factorize(frame["event_type"].to_numpy(), sort=True)
        k = len(names)
        pair = np.repeat(np.arange(len(starts)), counts)
        by_type = np.bincount(pair * k + type_codes[order], minlength=len(starts) * k)
        by_type = by_type.reshape(-1, k)
        for j, name in enumerate(names):
            pairs[f"type:{name}"] = by_type[:, j]
    return pd.DataFrame(pairs)


@njit(cache=True)
def _compensated_sums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per run ``values[bounds[g]:bounds[g + 1]]``: the sum, NaN skipped (0 for none), by
    pandas' groupby ``sum`` rule (Kahan's compensated summation in row order, the
    compensation reset where it turns NaN), so that the sums are its sums to the bit."""
    out = np.empty(len(bounds) - 1)
    for g in range(len(bounds) - 1):
        total = 0.0
        compensation = 0.0
        for t in range(bounds[g], bounds[g + 1]):
            v = values[t]
            if v != v:
                continue
            y = v - compensation
            s = total + y
            compensation = s - total - y
            if compensation != compensation:
                compensation = 0.0
            total = s
        out[g] = total
    return out


@njit(cache=True)
def _maxima(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per run: the largest value, NaN skipped (NaN for none), as groupby ``max``."""
    out = np.empty(len(bounds) - 1)
    for g in range(len(bounds) - 1):
        best = np.nan
        for t in range(bounds[g], bounds[g + 1]):
            v = values[t]
            if v == v and (best != best or v > best):
                best = v
        out[g] = best
    return out


@njit(cache=True)
def _runs_of_values(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per run of values that never decrease within it: how many distinct ones (groupby
    ``nunique`` of the session ids, which grow along the sorted events)."""
    out = np.empty(len(bounds) - 1, dtype=np.int64)
    for g in range(len(bounds) - 1):
        count = 0
        for t in range(bounds[g], bounds[g + 1]):
            if t == bounds[g] or values[t] != values[t - 1]:
                count += 1
        out[g] = count
    return out


def _aggregate_by_groupby(
    frame: pd.DataFrame, keys: list[str], has_types: bool, timed: bool
) -> pd.DataFrame:
    """``_aggregate`` by pandas' groupby (pairs in the order of their first event)."""
    aggs = {
        "count": ("session", "size"),
        "visits": ("session", "nunique"),
        "bounces": ("bounces", "sum"),
        "weighted": ("weighted", "sum"),
    }
    if timed:
        aggs["timestamp"] = ("timestamp", "min")
    for role, how in (("value", "sum"), ("scroll", "max")):
        if role in frame:
            aggs[role] = (role, how)
    # only built-in aggregations: a Python function per pair took most of a 1M-event parse
    grouped = frame.groupby(keys, sort=False)
    pairs = grouped.agg(**aggs)
    pair = grouped.ngroup().to_numpy()  # each event's pair: its row in ``pairs``
    pairs.insert(2, "dwell", group_sums(frame["dwell"].to_numpy(), pair, len(pairs)))
    if has_types:
        codes, names = pd.factorize(frame["event_type"].to_numpy(), sort=True)
        k = len(names)
        counts = np.bincount(pair * k + codes, minlength=len(pairs) * k).reshape(-1, k)
        for j, name in enumerate(names):
            pairs[f"type:{name}"] = counts[:, j]
    return pairs.reset_index()


def _interactions(
    pairs: pd.DataFrame,
    rules: EventRules,
    report: EventReport,
    item_values: dict[str, pd.Series] | None,
    timed: bool,
    user_ids: np.ndarray | None,
    item_ids: np.ndarray | None,
) -> Interactions:
    """The Interactions of aggregated pairs: strength per ``rules.strength`` (pairs counted
    into ``report``), every other column but the ids and time a per-pair feature."""
    if rules.strength == "value" and "value" not in pairs:
        raise RecsysError("events strength 'value' needs data.columns.value")
    strength = pairs[rules.strength].fillna(0.0).to_numpy(dtype=np.float64)
    report.pairs += int((strength > 0).sum())
    report.zero_strength_pairs += int((strength <= 0).sum())
    pairs = pairs.copy() if item_values else pairs
    for name, values in (item_values or {}).items():
        pairs[f"item_{name}"] = values.reindex(pairs["item"].to_numpy()).to_numpy(np.float64)
    feature_names = [c for c in pairs.columns if c not in ("user", "item", "timestamp")]
    return Interactions.from_arrays(
        pairs["user"].to_numpy(),
        pairs["item"].to_numpy(),
        strength,
        pairs["timestamp"].to_numpy() if timed else None,
        user_ids=user_ids,
        item_ids=item_ids,
        features={c: pairs[c].to_numpy(dtype=np.float64) for c in feature_names},
    )
