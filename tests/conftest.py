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


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("device") == "cuda":
            item.add_marker(pytest.mark.gpu)
