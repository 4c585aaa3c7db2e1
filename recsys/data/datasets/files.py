"""Reading data files with errors that name the file, the line and what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import DataFormatError, DataNotFoundError


def require_dir(path: str | Path, dataset: str, expected: str) -> Path:
    """``path`` as a Path if it is a folder, else a DataNotFoundError telling how to fix it."""
    path = Path(path)
    if not path.is_dir():
        raise DataNotFoundError(
            f"dataset '{dataset}': folder {path} does not exist (expected it to hold {expected}). "
            "Set RECSYS_DATA_DIR to the folder that holds the datasets "
            "(e.g. RECSYS_DATA_DIR=../shared/data) or pass paths.data_dir=... on the command line."
        )
    return path


def require_file(path: Path, dataset: str) -> Path:
    if not path.is_file():
        raise DataNotFoundError(
            f"dataset '{dataset}': file {path} is missing from {path.parent}. "
            "Check RECSYS_DATA_DIR (or paths.data_dir) points at a complete copy."
        )
    return path


def read_int_table(path: Path, sep: str, columns: list[str]) -> pd.DataFrame:
    """Read a header-less file of integer columns, all int64.

    A line with the wrong number of fields or a non-integer field raises DataFormatError with
    the file name, the 1-based line number and the offending line.
    """
    dtypes = dict.fromkeys(columns, np.int64)
    try:
        frame = pd.read_csv(
            path, sep=sep, header=None, names=columns, dtype=dtypes, engine="c", comment=None
        )
    except (ValueError, pd.errors.ParserError):
        _raise_first_bad_line(path, sep, columns)
        raise  # pragma: no cover - _raise_first_bad_line always raises when pandas failed
    return frame


def _raise_first_bad_line(path: Path, sep: str, columns: list[str]) -> None:
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split(sep)
            problem = None
            if len(fields) != len(columns):
                problem = f"{len(fields)} field(s), expected {len(columns)}"
            else:
                for name, value in zip(columns, fields):
                    try:
                        int(value)
                    except ValueError:
                        problem = f"column '{name}' is {value!r}, not an integer"
                        break
            if problem:
                shown = line.rstrip("\r\n")
                shown = shown if len(shown) <= 120 else shown[:117] + "..."
                raise DataFormatError(
                    f"{path}:{lineno}: malformed line ({problem}; columns are "
                    f"{', '.join(columns)}, separated by {sep!r}): {shown!r}"
                )
    raise DataFormatError(f"{path}: could not be parsed as {len(columns)} integer columns")
