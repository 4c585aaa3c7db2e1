"""pyarrow's CSV reader gives pandas' frame, or hands the file back (None)."""

import io

import numpy as np
import pandas as pd
import pytest

from recsys.data.arrow_csv import PANDAS_NA, read_csv_arrow


def pandas_frame(data: bytes, sep: str, ids: list[str]) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), sep=sep, low_memory=False, dtype={c: str for c in ids})


SAME = {
    "ints, floats, text, leading zeros in ids": (
        b"user,item,ts,dwell,kind\n007,1,1700000000,1.5,view\n7,0001,1700000001,,like\n"
        b'x y,"a,b",1700000002,3e2,"quoted ""kind"""\n'
    ),
    "every missing marker of pandas, in every column": b"user,item,ts,dwell,kind\n"
    + b"".join(f"{m},{m},{i},{m},{m}\n".encode() for i, m in enumerate(PANDAS_NA))
    + b"u,i,99,1.0,view\n",
    "true/false without missing cells, an all-empty column": (
        b"user,item,flag,empty,n\nu1,i1,true,,1\nu2,i2,FALSE,,\nu3,i3,True,,3\n"
    ),
    "ints with missing cells become floats, large int64": (
        b"user,item,n,big\nu,i,1,9007199254740993\nu,i,,-9007199254740993\n"
    ),
    "a UTF-8 BOM and non-ASCII text": "\ufeffuser,item,kind\nü,é,€\n".encode(),
    "a quoted field over two lines": b'user,item\nu,"i\nu,i"\nv,w\n',
}


CASES = [(name, ",") for name in SAME] + [(n, "\t") for n in SAME if b'"' not in SAME[n]]


@pytest.mark.parametrize(("name", "sep"), CASES)
def test_same_frame_as_pandas(name, sep):
    data = SAME[name] if sep == "," else SAME[name].replace(b",", b"\t")
    ours = read_csv_arrow(io.BytesIO(data), sep, ["user", "item"])
    assert ours is not None, "pyarrow's reader handed back a file it reads as pandas does"
    theirs = pandas_frame(data, sep, ["user", "item"])
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)


HANDED_BACK = {
    "ISO times (pyarrow would parse them)": b"user,item,ts\nu,i,2024-01-01 10:00:00\n",
    "dates": b"user,item,day\nu,i,2024-01-01\n",
    "true/false with a missing cell": b"user,item,flag\nu,i,true\nu,i,\n",
    "whole numbers beyond int64": b"user,item,n\nu,i,18446744073709551615\n",
    "a row with an extra field": b"user,item\nu,i\nu,i,j\n",
    "a row with a field missing": b"user,item,n\nu,i,1\nu,i\n",
    "bytes that are not UTF-8": b"user,item\nu,\xff\n",
    "a repeated column name": b"user,item,item\nu,i,j\n",
    "an empty column name": b"user,item,\nu,i,j\n",
}


@pytest.mark.parametrize("name", HANDED_BACK)
def test_hands_back_what_pandas_reads_otherwise(name):
    assert read_csv_arrow(io.BytesIO(HANDED_BACK[name]), ",", ["user", "item"]) is None


def test_random_numeric_columns_to_the_bit():
    rng = np.random.default_rng(0)
    n = 5000
    frame = pd.DataFrame(
        {
            "user": rng.integers(0, 10**6, n).astype(str),
            "item": rng.integers(0, 10**6, n).astype(str),
            "t": rng.integers(0, 2**40, n),
            "dwell": rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n),
        }
    )
    data = frame.to_csv(index=False, float_format="%.17g").encode()
    ours = read_csv_arrow(io.BytesIO(data), ",", ["user", "item"])
    pd.testing.assert_frame_equal(ours, pandas_frame(data, ",", ["user", "item"]), check_exact=True)


def test_the_missing_markers_are_pandas_own():
    parsers = pytest.importorskip("pandas._libs.parsers")
    assert set(PANDAS_NA) == set(parsers.STR_NA_VALUES)
