"""``recsys-data download`` against a local HTTP server on loopback."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recsys.data.download import SOURCES, DownloadError, Source, download


def fake_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ml-100k/u.data", "1\t2\t5\t881250949\n")
        z.writestr("ml-100k/README", "fake")
    return buf.getvalue()


FAKE = fake_zip()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    (root / "movielens").mkdir(parents=True)
    (root / "movielens" / "ml-100k.zip").write_bytes(FAKE)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_and_unpacks(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DOWNLOAD_MIRROR", server)
    digest = hashlib.sha256(FAKE).hexdigest()
    sources = {
        "ml100k": Source("movielens/ml-100k.zip", f"sha256:{digest}", "ml-100k", "u.data", "test")
    }
    out = io.StringIO()
    folder = download("ml100k", tmp_path / "data", sources=sources, progress=out)
    assert folder == tmp_path / "data" / "ml-100k"
    assert (folder / "u.data").read_text().startswith("1\t2\t5")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ml-100k"]  # no leftovers
    download("ml100k", tmp_path / "data", sources=sources, progress=out)
    assert "already in" in out.getvalue()


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "recsys-data"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    # the fake archive is not the pinned GroupLens file
    proc = cli(
        "download",
        "ml100k",
        "--data-dir",
        str(tmp_path / "d"),
        env={"RECSYS_DOWNLOAD_MIRROR": server},
    )
    assert proc.returncode == 2
    assert "checksum mismatch: expected md5 " + SOURCES["ml100k"].checksum[4:] in proc.stderr
    assert list((tmp_path / "d").iterdir()) == []


def test_offline_and_missing_files_are_clear(server, tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    proc = cli(
        "download", "ml100k", "--data-dir", str(tmp_path), env={"RECSYS_DOWNLOAD_MIRROR": closed}
    )
    assert proc.returncode == 2 and "seems to be offline" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DOWNLOAD_MIRROR", server)
        with pytest.raises(DownloadError, match="answered 404"):
            download("lastfm2k", tmp_path, progress=io.StringIO())
