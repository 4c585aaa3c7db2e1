"""Atomic writes (``recsys.files.write_atomically``): the final name holds the old content or
the whole new one, never a part; a writer that fails or is killed mid-write leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from recsys import files
from recsys.files import write_atomically, write_text

KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from recsys import files
    if sys.argv[2] == "named":
        files._anonymous_file = lambda folder: None
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(b"x" * 100_000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    files.write_atomically(Path(sys.argv[1]), write)
    """
)


@pytest.fixture(params=["anonymous", "named"])
def kind(request, monkeypatch, tmp_path_factory):
    """Both ways of writing: a file without a name (Linux's O_TMPFILE), and the hidden named
    file used where there is none."""
    if request.param == "anonymous":
        folder = os.open(tmp_path_factory.getbasetemp(), os.O_RDONLY)
        anonymous = files._anonymous_file(folder)
        os.close(folder)
        if anonymous is None:
            pytest.skip("no O_TMPFILE on this platform or file system")
        os.close(anonymous)
    else:
        monkeypatch.setattr(files, "_anonymous_file", lambda folder: None)
    return request.param


def test_a_new_file_and_a_replaced_file_hold_what_was_written(kind, tmp_path):
    path = tmp_path / "sub" / "out.json"
    write_text(path, "first\n")
    assert path.read_text() == "first\n"
    write_text(path, "second\n")
    assert path.read_text() == "second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(files._FILE_MODE)


def test_a_failing_writer_leaves_the_old_file_and_nothing_else(kind, tmp_path):
    path = tmp_path / "out.txt"
    write_text(path, "old\n")

    def fail(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device", str(tmp))

    with pytest.raises(OSError) as raised:
        write_atomically(path, fail)
    assert raised.value.filename == str(path)  # the final name, not the temporary one
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_writer_killed_mid_write_leaves_nothing_where_the_platform_allows(kind, tmp_path):
    """SIGKILL while the content is half written: with O_TMPFILE the folder stays empty; the
    named fallback leaves only its hidden temporary file, never the final name."""
    path = tmp_path / "out.bin"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), kind],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = [p.name for p in tmp_path.iterdir()]
    if kind == "anonymous":
        assert left == []
    else:
        assert len(left) == 1 and left[0].startswith(".out.bin.") and left[0].endswith(".tmp")
