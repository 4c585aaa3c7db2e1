"""Reading a CSV/TSV with pyarrow's multi-threaded reader, to the same frame as pandas' C
parser (``pd.read_csv(..., low_memory=False, dtype={id: str})``) would give, or None where
the two might differ, for the caller to read it with pandas.

Same frame means: the id columns as text, the other columns as pandas infers them (int64,
float64, text; ISO dates and times stay text), the same cells missing (pandas' list of
missing-value markers, empty ones included), text in pandas' default text dtype. None for
what pyarrow rejects (a row with another number of fields, bytes that are not UTF-8:
pandas' own messages then speak), for a header with an empty
or repeated name, for a column of true/false with missing cells, and for whole numbers of
2^53 or more (pandas keeps them as exact integers). Quoted newlines are read as pandas reads
them; a quote left open takes the rest of the file into one field (pandas: an error), which
``tables.read_table``'s check of rows against lines reports with its line."""

from __future__ import annotations

import codecs
from typing import BinaryIO

import numpy as np
import pandas as pd

# pandas' default missing-value markers (read_csv's ``na_values`` documentation)
PANDAS_NA = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan",
             "null"]  # fmt: skip
BLOCK = 1 << 24  # bytes per parse block (pyarrow's default of 1 MiB splits the work too finely)


def is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def read_csv_arrow(f: BinaryIO, sep: str, id_columns: list[str]) -> pd.DataFrame | None:
    """The frame of the UTF-8 CSV/TSV in ``f`` (see the module docstring), or None."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    text = pa.string()
    read = pcsv.ReadOptions(block_size=BLOCK, use_threads=True)
    parse = pcsv.ParseOptions(delimiter=sep, newlines_in_values=True)  # quoted, as pandas
    convert = pcsv.ConvertOptions(
        column_types={c: text for c in id_columns},
        null_values=PANDAS_NA,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        true_values=["True", "TRUE", "true"],  # pandas' (pyarrow's also take 1 and 0)
        false_values=["False", "FALSE", "false"],
    )
    try:
        table = pcsv.read_csv(f, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    names = table.column_names
    if len(set(names)) != len(names) or "" in names:
        return None
    columns = {}
    for name, column in zip(names, table.columns):
        kind = column.type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
            return None  # pyarrow parsed dates or times that pandas keeps as text
        if pa.types.is_boolean(kind) and column.null_count:
            return None  # pandas: an object column of True, False and NaN
        if pa.types.is_floating(kind):
            values = column.to_numpy()
            finite = values[np.isfinite(values)]
            if len(finite) and np.abs(finite).max() >= 2**53:
                return None  # pandas may read these as exact (u)int64
        if pa.types.is_null(kind):
            columns[name] = pd.Series(np.full(len(column), np.nan))
        elif not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_string(kind)
        ):
            return None
    frame = table.to_pandas(types_mapper=_text_dtype(), self_destruct=False)
    for name, series in columns.items():
        frame[name] = series
    return frame


def _text_dtype():
    """``types_mapper`` giving pandas' default text dtype (pandas 3: Arrow-backed ``str``,
    no copy), or None where that is ``object`` (pandas 2: pyarrow's own conversion)."""
    import pyarrow as pa

    default = pd.Series(["x"]).dtype
    if default is np.dtype(object):
        return None
    return {pa.string(): default, pa.large_string(): default}.get
