"""A user's own log in several files, from config: a zip of one CSV per event type, a glob
of daily files, a TSV named on the command line; errors name the file (the archive's member)
and the row; and the aggregation's speed-up gives the same sums as before, to the bit."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
from helpers import compose_config, one_line, run_main

from recsys.data.datamodule import RecsysDataModule
from recsys.data.datasets import EventLog
from recsys.data.events import group_sums
from recsys.errors import DataFormatError, RecsysError
from recsys.runs.fit import train

T0 = 1_700_000_000
SHOP = {"user": "visitorid", "item": "itemid", "timestamp": "timestamp"}


def shop_files(seed: int = 0) -> dict[str, list[tuple[int, int, int]]]:
    """An e-commerce export: one file per event type, rows (timestamp, visitor, item)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, n in (("view", 240), ("addtocart", 50), ("transaction", 25)):
        out[name] = [
            (
                T0 + int(rng.integers(0, 5 * 86400)),
                int(rng.integers(0, 24)),
                int(rng.integers(0, 30)),
            )
            for _ in range(n)
        ]
    return out


def csv_text(rows, header: str = "timestamp,visitorid,itemid") -> str:
    return "\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n"


def test_a_zip_of_one_csv_per_event_type_trains_with_types_from_the_file_names(tmp_path):
    files = shop_files()
    archive = tmp_path / "shop.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, rows in files.items():
            z.writestr(f"export/{name}.csv", csv_text(rows))
        z.writestr("export/README.txt", "not a log")  # an unsupported member is skipped
    cfg = compose_config(
        "train",
        ["data=events", f"data.path={archive}", "data.columns.user=visitorid",
         "data.columns.item=itemid", "data.event_type_from_file=true", "model=popularity",
         "trainer.max_epochs=1", "logger=[]"],
        tmp_path / "run",
    )  # fmt: skip
    _, metrics = train(cfg)
    assert metrics["test/ndcg@10"] >= 0
    dataset = EventLog(str(archive), SHOP, event_type_from_file=True)
    assert dataset.source_files() == [archive]  # the cache keys on the archive
    data = dataset.load()
    assert dataset.report.events_read == 315
    for name, rows in files.items():  # each pair's type:<file> count, as the file says
        expected = pd.DataFrame(rows, columns=["t", "u", "i"]).groupby(["u", "i"]).size()
        got = data.features[f"type:{name}"]
        rows_, cols = data.rows(), data.matrix.indices
        pairs = {(int(data.user_ids[r]), int(data.item_ids[c])): v
                 for r, c, v in zip(rows_, cols, got)}  # fmt: skip
        assert {k: int(v) for k, v in expected.items()} == {k: v for k, v in pairs.items() if v}
    with pytest.raises(RecsysError, match="event_type_from_file.*set one"):
        EventLog(str(archive), {**SHOP, "event_type": "type"}, event_type_from_file=True).load()


def test_errors_name_the_archive_member_and_its_own_row(tmp_path):
    files = shop_files()
    archive = tmp_path / "shop.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("view.csv", csv_text(files["view"]))
        z.writestr("transaction.csv", csv_text(files["transaction"], "timestamp,visitor,itemid"))
    with pytest.raises(DataFormatError) as e:
        EventLog(str(archive), SHOP).load()
    assert f"{archive}:transaction.csv: column 'visitorid' (data.columns.user) not found" in str(
        e.value
    )
    bad = [*files["view"][:3], (T0, "", 5)]  # row 4 of the member (line 5) has no user
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.csv", csv_text(files["view"]))
        z.writestr("b.csv", csv_text(bad))
    with pytest.raises(
        DataFormatError, match=r"shop\.zip:b\.csv, row 4 \(line 5\), column 'visitorid'"
    ):
        EventLog(str(archive), SHOP).load()
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("notes.txt", "nothing")
    with pytest.raises(DataFormatError, match="holds no CSV, TSV, Parquet or JSON-lines file"):
        EventLog(str(tmp_path / "empty.zip"), SHOP).load()


def test_a_glob_reads_every_matching_file_with_rows_counted_per_file(tmp_path):
    files = shop_files(1)["view"]
    days = tmp_path / "logs"
    days.mkdir()
    (days / "2024-01-01.csv").write_text(csv_text(files[:100]))
    (days / "2024-01-02.csv").write_text(csv_text(files[100:]))
    (days / "2023-12-31.txt").write_text("not matched")
    dataset = EventLog(str(days / "2024-*.csv"), SHOP)
    assert dataset.source_files() == [days / "2024-01-01.csv", days / "2024-01-02.csv"]
    ev = dataset.events()
    assert len(ev) == 240 and ev["row"].max() == 140  # rows of each file
    assert ev.loc[ev["row"] == 1, "file"].astype(str).tolist() == [
        str(days / "2024-01-01.csv"),
        str(days / "2024-01-02.csv"),
    ]
    one = EventLog(str(tmp_path / "all.csv"), SHOP)
    (tmp_path / "all.csv").write_text(csv_text(files))
    a, b = dataset.load(), one.load()  # the same events in two files or in one
    assert (a.matrix != b.matrix).nnz == 0 and np.array_equal(a.timestamps, b.timestamps)
    listed = [str(days / "2024-01-02.csv"), str(days / "2024-01-01.csv")]
    cfg = compose_config("train", ["data=events", f"data.path=[{','.join(listed)}]",
                                   "data.columns.user=visitorid", "data.columns.item=itemid"],
                         tmp_path)  # fmt: skip
    from_list = RecsysDataModule.from_config(cfg).dataset
    assert from_list.source_files() == [days / "2024-01-02.csv", days / "2024-01-01.csv"]
    assert (from_list.load().matrix != a.matrix).nnz == 0
    (days / "2024-01-03.csv").write_text(csv_text([(T0, 1, 2), ("yesterday", 1, 3)]))
    with pytest.raises(
        DataFormatError, match=r"2024-01-03\.csv, row 2 \(line 3\), column 'timestamp'"
    ):
        EventLog(str(days / "2024-*.csv"), SHOP).load()


def test_a_glob_matching_nothing_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err, _ = run_main(
        "recsys-train",
        ["data=events", f"data.path={tmp_path}/logs/2024-*.csv", "logger=[]"],
        capsys,
    )
    line = one_line(code, err)
    assert "data.path: no file matches the pattern" in line and "2024-*.csv" in line


def test_format_tsv_from_the_command_line(tmp_path, capsys, monkeypatch):
    rows = shop_files(2)["view"]
    log = tmp_path / "export.txt"  # a suffix that says nothing
    log.write_text(csv_text(rows).replace(",", "\t"))
    args = ["data=events", f"data.path={log}", "data.columns.user=visitorid",
            "data.columns.item=itemid", "model=popularity", "trainer.max_epochs=1",
            "logger=[]", "callbacks=none"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    code, err, _ = run_main("recsys-train", args, capsys)
    assert "unknown event log format None; set data.format" in one_line(code, err)
    code, err, _ = run_main("recsys-train", [*args, "data.format=tsv"], capsys)
    assert code == 0, err[-3000:]
    cfg = compose_config("train", [*args, "data.format=tsv"], tmp_path / "run")
    data = RecsysDataModule.from_config(cfg)
    assert data.summary["interactions"] == len({(u, i) for _, u, i in rows})


def test_group_sums_equal_a_per_group_pandas_sum_to_the_bit():
    rng = np.random.default_rng(3)
    for groups in (40_000, 3_000, 300):  # groups of ~1, ~13 and ~130 values: every branch
        n = 40_000
        group = np.unique(rng.integers(0, groups, n), return_inverse=True)[1]
        values = rng.exponential(40, n) * 10.0 ** rng.integers(-3, 6, n)
        values[rng.random(n) < 0.3] = np.nan
        expected = (
            pd.DataFrame({"g": group, "v": values})
            .groupby("g")["v"]
            .agg(lambda s: s.sum(min_count=1))
            .to_numpy()
        )
        got = group_sums(values, group, group.max() + 1)
        assert np.array_equal(got, expected, equal_nan=True)
