"""Run directories never collide: two runs started together get two complete folders."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import BIN, SMALL_DATA

from recsys.files import unique_dir

FAST = [*SMALL_DATA, "trainer.max_epochs=2"]


def test_unique_dir_creates_a_new_folder_per_base_and_keeps_it(tmp_path):
    base = str(tmp_path / "runs" / "2026-01-01_00-00-00")
    first = unique_dir(base)
    assert first == base and (tmp_path / "runs" / "2026-01-01_00-00-00").is_dir()
    assert unique_dir(base) == first  # the same process asks again: the same folder
    (tmp_path / "runs" / "2026-01-01_00-00-01").mkdir()
    other = str(tmp_path / "runs" / "2026-01-01_00-00-01")
    assert unique_dir(other) == other + "_2"  # taken by someone else: the next free name


@pytest.mark.slow
def test_two_runs_started_together_get_two_complete_folders(tmp_path):
    """Both started at once, with one base name for both (as two runs of the default config
    started in the same second have: the same resolver makes the default folder names)."""
    args = [*FAST, f"hydra.run.dir=${{recsys_unique_dir:{tmp_path}/logs/train/runs/same}}"]

    def start(_):
        return subprocess.run([str(BIN / "recsys-train"), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(start, range(2)))
    assert all(p.returncode == 0 for p in procs), [p.stderr[-2000:] for p in procs]
    runs = sorted((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 2
    assert [r.name for r in runs] == ["same", "same_2"]
    writers = []
    for run in runs:
        assert json.loads((run / "metrics.json").read_text())["test/ndcg@20"] > 0
        assert (run / "per_user_metrics.parquet").is_file()
        assert (run / ".hydra" / "config.yaml").is_file()
        assert (run / "checkpoints" / "last.ckpt").is_file()
        events = list((run / "tensorboard").glob("events.out.tfevents.*"))
        pids = {e.name.split(".")[-2] for e in events}  # events.out.tfevents.<t>.<host>.<pid>.<n>
        assert events and len(pids) == 1  # one process wrote each folder
        writers.append(pids.pop())
    assert writers[0] != writers[1]
