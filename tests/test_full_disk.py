"""A full disk or an unwritable folder: the run ends with one line and leaves no half-written
file under a final name; the data cache, being optional, only warns."""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import subprocess

import pytest
from helpers import BIN, SMALL_DATA, assert_no_partial_file, one_line_error, run_cli

pytestmark = pytest.mark.slow  # console scripts in subprocesses


@contextlib.contextmanager
def small_filesystem(path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (needs the right to mount: root here and in CI;
    skipped with the reason elsewhere; the file-size limit test below runs everywhere)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_a_full_disk_ends_the_run_with_one_line_and_no_partial_file(tmp_path):
    with small_filesystem(tmp_path / "small", "1500k") as small:
        proc = run_cli("recsys-train", f"hydra.run.dir={small}/run", "trainer.max_epochs=3",
                       cwd=tmp_path)  # fmt: skip
        line = one_line_error(proc)
        assert "No space left on device" in line and str(small / "run") in line
        assert list((small / "run" / "checkpoints").glob("*.ckpt"))  # the first one fitted
        assert_no_partial_file(small / "run")


def test_an_unwritable_cache_folder_only_warns(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    proc = run_cli("recsys-train", *SMALL_DATA, "trainer.max_epochs=1", cwd=tmp_path,
                   env={"RECSYS_CACHE_DIR": str(blocker / "cache")})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the data cache could not be written" in proc.stderr + proc.stdout
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["test/ndcg@20"] > 0


def test_a_file_size_limit_ends_the_run_with_one_line_and_no_partial_file(tmp_path):
    """The same without mounting anything: no file may grow past 1 MB (RLIMIT_FSIZE): the
    data cache (1.3 MB) is skipped with a warning, the first checkpoint (1.5 MB) fails."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    proc = subprocess.run(
        [str(BIN / "recsys-train"), "trainer.max_epochs=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=limit,
    )  # fmt: skip
    assert "the data cache could not be written" in proc.stderr + proc.stdout
    assert "File too large" in one_line_error(proc)
    assert_no_partial_file(tmp_path)
