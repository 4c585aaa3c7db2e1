"""Fixtures and test tiers. Tests needing ../shared/data skip when it is absent, or fail when
RECSYS_REQUIRE_SHARED_DATA=1 (as in CI); they are marked ``realdata``, and tests that run on
CUDA ``gpu``, here (``slow`` is marked in the test files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared_data_dir() -> Path:
    env = os.environ.get("RECSYS_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets (RECSYS_DATA_DIR, else ../shared/data)."""
    path = _shared_data_dir()
    if not (path / "ml-100k" / "u.data").is_file():
        reason = (
            f"shared datasets not found at {path} (set RECSYS_DATA_DIR to the folder holding "
            "ml-100k/)"
        )
        if os.environ.get("RECSYS_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(reason + "; RECSYS_REQUIRE_SHARED_DATA=1 makes this a failure")
        pytest.skip(reason)
    return path


def pytest_configure(config) -> None:
    """Under pytest-xdist each worker takes its share of the cores: torch's threads here, and
    OMP_NUM_THREADS for the console scripts tests start. Two workers of two threads each on
    two cores were up to 10x slower per training step than one thread each."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("device") == "cuda":
            item.add_marker(pytest.mark.gpu)
