"""Reading an A/B test's log (a folder: ``views.csv``, optionally ``impressions.csv`` and
``assignment.csv``) into frames with the canonical column names that
``recsys.evaluation.abtest`` analyses, with errors that name the file, row and column."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.tables import LogFile, cell_at, read_table, require_columns, show_cell
from recsys.errors import DataFormatError, DataNotFoundError, RecsysError

VIEW_COLUMNS = {
    "reader": "reader",
    "session": "session",
    "arm": "arm",
    "time": "time",
    "dwell": "dwell_seconds",
    "source": "source",
}
IMPRESSION_COLUMNS = {
    "reader": "reader",
    "session": "session",
    "step": "step",
    "clicked": "clicked",
    "arm": "arm",
}
ASSIGNMENT_COLUMNS = {"reader": "reader", "arm": "arm"}
FILES = {"views": "views.csv", "impressions": "impressions.csv", "assignment": "assignment.csv"}
REQUIRED = {"views": ("reader", "session", "arm"), "impressions": ("reader", "session", "clicked"),
            "assignment": ("reader", "arm")}  # fmt: skip


@dataclass
class AbLog:
    """A log read by ``read_log``: frames with the canonical column names, and notes on what
    was assumed or left out."""

    views: pd.DataFrame
    impressions: pd.DataFrame | None = None
    assignment: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def read_log(
    folder: str | Path,
    columns: Mapping[str, str | None] | None = None,
    impression_columns: Mapping[str, str | None] | None = None,
    assignment_columns: Mapping[str, str | None] | None = None,
    files: Mapping[str, str | None] | None = None,
    encoding: str = "utf-8",
) -> AbLog:
    """The views, impressions and assignment of the log in ``folder``: ``files`` names them
    (default ``FILES``; impressions and assignment are optional: absent, or set to None), the
    column mappings map each role to the file's column (defaults ``VIEW_COLUMNS`` ...; an
    optional role set to None is not read). Errors (one line, naming the file, row and column
    and the setting to fix): a missing folder, views file or column; a missing reader,
    session or arm; an unparseable time; a negative or non-numeric dwell; ``clicked`` not
    0/1; a reader assigned to two arms."""
    folder = Path(str(folder)).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DataNotFoundError(
            f"{folder} {what}: give dir= the folder holding the log's views.csv "
            "(and impressions.csv, assignment.csv)"
        )
    names = {**FILES, **(files or {})}
    notes: list[str] = []
    if not names.get("views"):
        raise RecsysError("files.views must name the views file of the log")
    views_path = folder / names["views"]
    if not views_path.is_file():
        raise DataNotFoundError(
            f"{folder} has no {names['views']} (files.views): the log's views file is needed"
        )
    views = _read(views_path, {**VIEW_COLUMNS, **(columns or {})}, "views", "columns", encoding)
    out = AbLog(views, notes=notes)
    for part, mapping, setting in (
        ("impressions", {**IMPRESSION_COLUMNS, **(impression_columns or {})}, "impression_columns"),
        ("assignment", {**ASSIGNMENT_COLUMNS, **(assignment_columns or {})}, "assignment_columns"),
    ):
        name = names.get(part)
        if not name or not (folder / name).is_file():
            shown = f"no {name}" if name else f"files.{part}=null"
            notes.append(
                f"{shown}: "
                + (
                    "click-through of the block not computed (widget views per session still are)"
                    if part == "impressions"
                    else "readers per arm are the readers seen in views (readers randomized "
                    "but never seen are unknown, so a treatment that changes who comes "
                    "biases the sample-ratio check and sessions_per_reader)"
                )
            )
            continue
        setattr(out, part, _read(folder / name, mapping, part, setting, encoding))
    return out


def _read(
    path: Path, mapping: Mapping[str, str | None], what: str, setting: str, encoding: str
) -> pd.DataFrame:
    """One file of the log with canonical columns, validated."""
    wanted = {role: str(col) for role, col in mapping.items() if col is not None}
    for role in REQUIRED[what]:
        if role not in wanted:
            raise RecsysError(f"{setting}.{role} must name the {role} column of {path}")
    ids = [wanted[r] for r in ("reader", "session", "arm", "step") if r in wanted]
    frame, fmt = read_table(LogFile(path, None, f"files.{what}"), None, encoding, ids, what)
    settings = {role: f"{setting}.{role}" for role in wanted}
    require_columns(frame, path, wanted, settings, what)
    out = pd.DataFrame({role: frame[col].reset_index(drop=True) for role, col in wanted.items()})

    def where(i: int, role: str) -> str:
        return cell_at(path, i + 1, wanted[role], fmt)

    for role in ("reader", "session", "arm"):
        if role in out:
            missing = out[role].isna().to_numpy()
            if missing.any():
                i = int(np.flatnonzero(missing)[0])
                raise DataFormatError(f"{where(i, role)}: the {role} is missing")
            out[role] = _ids(out[role])
    if "step" in out:
        out["step"] = _ids(out["step"].fillna(""))
    if "time" in out:
        out["time"] = parse_times(out["time"], lambda i: where(i, "time"))
    if "dwell" in out:
        raw = out["dwell"]
        dwell = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
        bad = (raw.notna().to_numpy() & np.isnan(dwell)) | (dwell < 0) | np.isinf(dwell)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"{where(i, 'dwell')}: dwell must be a non-negative number of seconds (or "
                f"empty: unknown), got {show_cell(raw.iloc[i])}"
            )
        out["dwell"] = dwell
    if "source" in out:
        out["source"] = out["source"].astype(str).where(out["source"].notna(), "")
    if "clicked" in out:
        raw = out["clicked"]
        text = raw.astype(str).str.strip().str.lower()
        clicked = text.map({"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0})
        bad = clicked.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{where(i, 'clicked')}: clicked must be 0 or 1, got "
                                  f"{show_cell(raw.iloc[i])}")  # fmt: skip
        out["clicked"] = clicked.astype(np.int64)
    if what == "assignment":
        arms = out.groupby("reader")["arm"].nunique()
        if (arms > 1).any():
            reader = arms.index[arms.to_numpy() > 1][0]
            i = int(np.flatnonzero((out["reader"] == reader).to_numpy())[1])
            raise DataFormatError(
                f"{where(i, 'arm')}: reader {reader!r} is assigned to more than one arm "
                f"({', '.join(sorted(out.loc[out['reader'] == reader, 'arm'].unique()))})"
            )
        out = out.drop_duplicates("reader").reset_index(drop=True)
    return out


def _ids(series: pd.Series) -> pd.Series:
    """Ids as text, as written (a whole float from Parquet without its '.0')."""
    if pd.api.types.is_float_dtype(series):
        whole = series.notna() & (series == np.round(series)) & (series.abs() < 2**53)
        if whole.all():
            return series.astype(np.int64).astype(str)
    return series.astype(str)


def parse_times(raw: pd.Series, where) -> pd.Series:
    """UTC times: ISO 8601 text, datetimes, or numbers as unix seconds; DataFormatError for the
    first missing or unparseable one."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")
        parsed = parsed.dt.tz_convert("UTC")
    elif pd.api.types.is_numeric_dtype(raw):
        parsed = pd.to_datetime(raw, unit="s", utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{where(i)}: not a time (ISO 8601, e.g. 2024-05-01T09:30:00Z, or unix seconds): "
            f"{show_cell(raw.iloc[i])}"
        )
    return parsed
