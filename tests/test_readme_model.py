"""The documentation's "Adding a model" guide (docs/adding-a-model.md), followed from its
text alone: its files are written into an empty folder outside the package, the contract of
``recsys.testing`` runs on the model there, and ``recsys-train`` / ``recsys-recommend`` run
it from its config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SMALL_DATA, run_cli

from recsys.errors import UntrustedClassError
from recsys.models.checkpoint import load_model

pytestmark = pytest.mark.slow  # pytest and console scripts in subprocesses

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "adding-a-model.md"


def guide_files() -> dict[str, str]:
    """``{path: text}`` of the code blocks of the guide whose first line is a comment naming
    a file."""
    section = GUIDE.read_text()
    files = {}
    for block in re.findall(r"```(?:python|yaml)\n(.*?)```", section, flags=re.S):
        first, _, rest = block.partition("\n")
        name = re.fullmatch(r"# (\S+\.(?:py|yaml))", first.strip())
        if name:
            files[name.group(1)] = rest
    return files


def test_the_readme_guide_gives_a_model_that_passes_the_contract(tmp_path, monkeypatch):
    files = guide_files()
    assert set(files) == {
        "my_models/weighted_popularity.py",
        "my_configs/model/weighted_popularity.yaml",
        "test_weighted_popularity.py",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", tmp_path,
         "test_weighted_popularity.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"\b\d+ passed", proc.stdout) and " failed" not in proc.stdout

    train = run_cli(
        "recsys-train", "--config-dir", "my_configs", "model=weighted_popularity",
        *SMALL_DATA, "hydra.run.dir=run", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test/ndcg@20"] > 0.1
    ckpt = "ckpt_path=run/checkpoints/last.ckpt"
    served = run_cli("recsys-recommend", ckpt, "users=[1]", "trusted_packages=[my_models]",
                     cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert served.returncode == 0, served.stderr[-3000:]
    assert len(json.loads(served.stdout)["items"]) == 10
    monkeypatch.syspath_prepend(str(tmp_path))  # importable, yet not trusted unless told
    with pytest.raises(UntrustedClassError, match="weighted_popularity.WeightedPopularity"):
        load_model(tmp_path / "run" / "checkpoints" / "last.ckpt")
