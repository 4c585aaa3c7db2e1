"""The package as PyPI would carry it: ``python -m build`` makes a wheel and an sdist without
warnings, and the wheel, installed into a fresh virtual environment, runs recsys-train on the
default dataset (with the configs it carries, outside the clone)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import recsys

ROOT = Path(__file__).resolve().parent.parent
TORCH = os.environ.get("TORCH", "torch==2.13.0")  # as the Makefile installs it


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})  # fmt: skip
    assert proc.returncode == 0, (cmd, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout + proc.stderr


def test_one_version_everywhere():
    yaml = pytest.importorskip("yaml")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == recsys.__version__
    assert f"## [{recsys.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'^version\s*=\s*"', pyproject, re.MULTILINE)  # dynamic: from recsys


@pytest.mark.slow
def test_wheel_builds_installs_and_trains(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    build = [sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist")]
    proc = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    noise = [line for line in (proc.stdout + proc.stderr).splitlines()
             if re.search(r"warn|deprecat", line, re.IGNORECASE)]  # fmt: skip
    assert not noise, noise
    (wheel,) = (tmp_path / "dist").glob("recsys_implicit-*.whl")
    assert wheel.name.startswith(f"recsys_implicit-{recsys.__version__}-")
    assert len(list((tmp_path / "dist").glob("recsys_implicit-*.tar.gz"))) == 1
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "recsys/configs/train.yaml" in names and any(n.endswith("/LICENSE") for n in names)
    assert "License-Expression: MIT" in meta and f"Version: {recsys.__version__}" in meta

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    py = str(venv / "bin" / "python")
    # --no-compile: no .pyc for torch's thousands of files (a minute of the test otherwise)
    run([py, "-m", "pip", "install", "--quiet", "--no-compile", TORCH], tmp_path)
    out = run([py, "-m", "pip", "install", "--no-compile", str(wheel)], tmp_path)
    assert not re.search(r"deprecat", out, re.IGNORECASE), out[-3000:]

    work = tmp_path / "work"  # no clone here: the configs must come from the wheel
    work.mkdir()
    run([str(venv / "bin" / "recsys-train"), "trainer.max_epochs=1"], work,
        {"RECSYS_DATA_DIR": str(work / "data")})  # fmt: skip
    (metrics,) = (work / "logs" / "train" / "runs").glob("*/metrics.json")
    assert 0 < json.loads(metrics.read_text())["test/ndcg@20"] <= 1
