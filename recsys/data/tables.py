"""Reading tables (CSV, TSV, Parquet, JSON lines) for datasets of the user's own: one file,
several, a glob pattern or a zip archive's members (``expand_paths``, ``LogFile``), with
errors that name the file (the member of an archive), the row, the line and the column, and
say which setting to fix (``read_table``, ``require_columns``)."""

from __future__ import annotations

import glob
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from recsys.data.arrow_csv import is_utf8, read_csv_arrow
from recsys.errors import DataFormatError, DataNotFoundError, EmptyDataError, RecsysError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def show_cell(value) -> str:
    """A cell as the user wrote it: numpy scalars as plain numbers, missing as 'empty'."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "an empty value"
    return repr(value.item() if hasattr(value, "item") else value)


def cell_at(path: Path, row: int, column: str, fmt: str) -> str:
    line = f" (line {row + 1})" if fmt in ("csv", "tsv") else ""
    return f"{path}, row {row}{line}, column '{column}'"


@dataclass(frozen=True)
class LogFile:
    """One file of a log: a file on disk, or a member of a zip archive, shown as
    ``archive.zip:member`` in messages."""

    path: Path
    member: str | None = None
    setting: str = field(default="data.path", compare=False)  # the setting naming it

    def __str__(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @property
    def name(self) -> str:
        """The file's own name (a member's, without the folders inside the archive)."""
        return Path(self.member).name if self.member else self.path.name

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    def size(self) -> int:
        if self.member is None:
            return self.path.stat().st_size
        with zipfile.ZipFile(self.path) as z:
            return z.getinfo(self.member).file_size

    def open(self) -> BinaryIO:
        """The file's bytes (a member is read whole: Parquet needs to seek)."""
        if self.member is None:
            return open(self.path, "rb")
        with zipfile.ZipFile(self.path) as z:
            return io.BytesIO(z.read(self.member))


def as_file(path) -> LogFile:
    return path if isinstance(path, LogFile) else LogFile(Path(path))


GLOB_CHARS = "*?["
FORMAT_NAMES = "CSV, TSV, Parquet or JSON-lines"


def expand_paths(
    paths: str | Path | Sequence, what: str = "event log", setting: str = "data.path"
) -> list[LogFile]:
    """The files a ``path`` setting names, in order: a file; a glob pattern (``/logs/2024-*.csv``,
    sorted); a zip archive (its CSV, TSV, Parquet and JSON-lines members, by name); or a list
    of those. RecsysError (one line, what to do) for a pattern matching nothing, an archive
    without a readable member or a file named twice; a missing plain file is left to the
    reader (``read_table``), which names it."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise RecsysError(f"{setting} is an empty list: name the {what} file(s)")
    out: list[LogFile] = []
    for item in items:
        text = str(Path(str(item)).expanduser())
        if any(c in text for c in GLOB_CHARS) and not Path(text).exists():
            matched = sorted(glob.glob(text, recursive=True))
            if not matched:
                raise RecsysError(
                    f"{setting}: no file matches the pattern {text!r}; check the folder and the "
                    "pattern (and RECSYS_DATA_DIR), or name the files as a list"
                )
            paths_here = [Path(m) for m in matched if not Path(m).is_dir()]
        else:
            paths_here = [Path(text)]
        for path in paths_here:
            if path.suffix.lower() == ".zip":
                out += _zip_members(path, what, setting)
            else:
                out.append(LogFile(path, None, setting))
    seen = set()
    for f in out:
        if f in seen:
            raise RecsysError(f"{setting} names {f} twice: its {what} rows would count twice")
        seen.add(f)
    return out


def _zip_members(path: Path, what: str, setting: str) -> list[LogFile]:
    """The readable members of a zip archive, by name; folders and macOS resource forks
    (``__MACOSX/``, ``._*``) skipped."""
    if not path.is_file():
        raise DataNotFoundError(f"{what} archive {path} does not exist; check {setting}")
    try:
        with zipfile.ZipFile(path) as z:
            names = [i.filename for i in z.infolist() if not i.is_dir()]
    except zipfile.BadZipFile as e:
        raise DataFormatError(f"{path}: not a zip archive ({e})") from None
    usable = sorted(
        n
        for n in names
        if Path(n).suffix.lower() in FORMATS
        and not n.startswith("__MACOSX/")
        and not Path(n).name.startswith("._")
    )
    if not usable:
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise DataFormatError(
            f"{path}: the archive holds no {FORMAT_NAMES} file ({shown or 'it is empty'}); put "
            f"the {what} in it as .csv, .tsv, .parquet or .jsonl files"
        )
    return [LogFile(path, n, setting) for n in usable]


def require_columns(
    frame: pd.DataFrame, path, wanted: Mapping[str, str], settings: Mapping[str, str], what: str
) -> None:
    """DataFormatError naming the first of ``wanted`` (role -> column) missing from ``frame``
    (with the setting that names it, ``settings[role]``, and the columns the file has);
    EmptyDataError for a file with a header but no rows of ``what``."""
    for role, name in wanted.items():
        if name not in frame.columns:
            raise DataFormatError(
                f"{path}: column {name!r} ({settings[role]}) not found; the file has "
                f"columns: {', '.join(map(str, frame.columns))}"
            )
    if frame.empty:
        raise EmptyDataError(f"{path}: no {what} (the file has a header but no rows)")


def read_table(
    path: Path | LogFile,
    fmt: str | None,
    encoding: str,
    id_columns: list[str],
    what: str = "event log",
    prefix: str = "data",
) -> tuple[pd.DataFrame, str]:
    """``(frame, format)`` of a CSV, TSV, Parquet or JSON-lines file (``fmt`` None: from the
    suffix), ``id_columns`` read as text (never floats); errors name the file (``what`` it
    is, and the settings under ``prefix`` to fix) and, for undecodable bytes or a quote that
    joined lines, the line. ``path`` may be a ``LogFile`` (a member of a zip archive)."""
    src = as_file(path)
    path = src.path
    setting = f"{prefix}.path" if src.setting == "data.path" else src.setting
    if src.member is None and path.is_dir():
        raise DataNotFoundError(
            f"{path} is a folder, not an {what} file: give {setting} the file inside it (or a "
            "pattern such as folder/*.csv)"
        )
    if src.member is None and not path.is_file():
        raise DataNotFoundError(
            f"{what} {path} does not exist; check {setting} (and RECSYS_DATA_DIR)"
        )
    fmt = fmt or FORMATS.get(src.suffix)
    if fmt not in ("csv", "tsv", "parquet", "jsonl"):
        raise RecsysError(
            f"{src}: unknown {what} format {fmt!r}; set {prefix}.format to csv, tsv, parquet "
            "or jsonl"
        )
    if src.size() == 0:
        raise EmptyDataError(f"{src}: the file is empty (no header, no {what} rows)")
    try:
        with src.open() as f:
            if fmt in ("csv", "tsv"):
                sep, ids = ("," if fmt == "csv" else "\t"), {c: str for c in id_columns}
                frame = read_csv_arrow(f, sep, id_columns) if is_utf8(encoding) else None
                if frame is None:  # pandas' parser: its own errors, or what pyarrow reads else
                    f.seek(0)
                    frame = pd.read_csv(f, sep=sep, low_memory=False, dtype=ids, encoding=encoding)
            elif fmt == "parquet":
                frame = pd.read_parquet(f)
            else:
                frame = pd.read_json(f, lines=True, dtype=False, encoding=encoding)
    except UnicodeDecodeError:
        raise DataFormatError(_undecodable(src, encoding, prefix)) from None
    except LookupError:
        raise RecsysError(f"{prefix}.encoding={encoding!r} is not a known text encoding") from None
    except (ValueError, pd.errors.ParserError, OSError) as e:
        raise DataFormatError(f"{src}: cannot be read as {fmt}: {e}") from e
    if fmt in ("csv", "tsv"):
        _check_rows_are_lines(src, len(frame), encoding)
    return frame, fmt


def _line_count(src: LogFile, block: int = 1 << 24) -> int:
    """Lines in the file (a last line without a newline counts), blank ones included, by
    counting newline bytes in blocks."""
    count, last = 0, b"\n"
    with src.open() as f:
        while chunk := f.read(block):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _undecodable(path: Path | LogFile, encoding: str, prefix: str = "data") -> str:
    """The message for a file that is not valid ``encoding``: its first bad line and byte."""
    with as_file(path).open() as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as e:
                byte = line[e.start : e.start + 1].hex()
                return (
                    f"{path}, line {number}: byte 0x{byte} is not valid {encoding}; give the "
                    f"file's encoding as {prefix}.encoding (e.g. latin-1 or cp1252)"
                )
    return f"{path}: not valid {encoding}; give the file's encoding as {prefix}.encoding"


def _check_rows_are_lines(path: Path | LogFile, rows: int, encoding: str) -> None:
    """DataFormatError when a CSV/TSV gave fewer rows than it has non-blank lines after the
    header: a quote (") left open joins the lines after it into one field."""
    src = as_file(path)
    if _line_count(src) - 1 == rows:  # no blank line and no joined lines: nothing to check
        return
    with src.open() as f:
        next(f, None)  # the header
        lines = sum(1 for line in f if line.strip())
    if rows == lines:
        return
    with io.TextIOWrapper(src.open(), encoding=encoding, errors="replace", newline="") as f:
        for number, line in enumerate(f, start=1):
            if number > 1 and line.count('"') % 2:
                raise DataFormatError(
                    f'{src}, line {number}: an unbalanced quote (") makes the reader join '
                    f"the lines after it into one field ({rows:,} rows read from {lines:,} "
                    "lines): fix the quoting of that line"
                )
