"""Shared test helpers: composing configs the way the entry points do."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig

from recsys.config import compose_run_config

SMALL_DATA = [
    "data.n_users=300",
    "data.n_items=200",
    "data.mean_interactions=20",
    "figures=false",  # drawn where a test reads them (test_plots, test_cli's multirun, the wheel)
]


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """``configs/<name>.yaml`` composed with ``overrides``, writing into ``output_dir``."""
    return compose_run_config(name, overrides, output_dir, root_dir=output_dir)


BIN = Path(sys.executable).parent


def run_cli(
    cmd: str, *args: str, cwd: Path, env: dict | None = None
) -> subprocess.CompletedProcess:
    """A console script of the package (``recsys-train``...) run as a user would, in ``cwd``."""
    return subprocess.run(
        [str(BIN / cmd), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line a console script printed before exiting with status 2
    (asserting that it did so, without a traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def assert_no_partial_file(folder: Path) -> None:
    """Every file under a final name in ``folder`` is whole: checkpoints load, JSON parses,
    parquet reads; no temporary file (``.<name>.<random>.tmp``) is left."""
    import pandas as pd

    from recsys.models.checkpoint import load_model

    for f in Path(folder).rglob("*"):
        assert not f.name.endswith(".tmp"), f
        if f.suffix == ".ckpt":
            load_model(f)
        elif f.suffix == ".json":
            json.loads(f.read_text())
        elif f.suffix == ".parquet":
            pd.read_parquet(f)


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """Restore the process's logging after the block: a console script run in this process
    configures logging for its own process (recsys-recommend and recsys-serve disable every
    existing logger, as Hydra's ``job_logging: disabled`` does), which would silence the
    loggers that later tests of the same worker read through ``caplog``."""
    root = logging.getLogger()
    kept = (root.level, list(root.handlers))
    loggers = {
        name: (lg.disabled, lg.level, lg.propagate, list(lg.handlers))
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    try:
        yield
    finally:
        root.setLevel(kept[0])
        root.handlers[:] = kept[1]
        for name, lg in logging.root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                disabled, level, propagate, handlers = loggers.get(name, (False, 0, True, []))
                lg.disabled, lg.propagate = disabled, propagate
                lg.setLevel(level)
                lg.handlers[:] = handlers


def run_main(script: str, args: list[str], capsys) -> tuple[int, str, str]:
    """A console script's ``main`` run in this process on ``args`` (as its entry point runs it,
    without starting Python again): ``(exit status, stderr, stdout)``; ``capsys`` is pytest's."""
    from hydra.core.global_hydra import GlobalHydra

    from recsys import abtest, compare, engagement, eval, recommend, replay, sweep, train  # noqa: A004
    from recsys.data import download

    mains = {
        "recsys-train": train.main,
        "recsys-eval": eval.main,
        "recsys-recommend": recommend.main,
        "recsys-replay": replay.main,
        "recsys-sweep": sweep.main,
        "recsys-compare": compare.main,
        "recsys-data": download.main,
        "recsys-engagement": engagement.main,
        "recsys-abtest": abtest.main,
    }
    GlobalHydra.instance().clear()
    capsys.readouterr()  # what came before is not this script's
    argv = sys.argv
    sys.argv = [script, *args]
    try:
        with logging_kept():
            mains[script](*([args] if script in ("recsys-compare", "recsys-data") else []))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def one_line(code: int, err: str) -> str:
    """``one_line_error`` for ``run_main``'s result."""
    return one_line_error(subprocess.CompletedProcess([], code, "", err))


def gradcheck_training_step(model, steps: int = 5, lr: float = 0.05) -> bool:
    """``torch.autograd.gradcheck`` (float64 finite differences) of a sampled model's
    ``training_step`` loss in its ``user_emb`` and ``item_emb``, after ``steps`` Adam steps
    (away from the initialization); every call draws the same batch (seed 1)."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        model.training_step(None, 0).backward()
        optimizer.step()

    def step_loss(user_emb, item_emb):  # the model's own tensors; the same draw every call
        with torch.random.fork_rng():
            torch.manual_seed(1)
            return model.training_step(None, 0)

    return torch.autograd.gradcheck(step_loss, (model.user_emb, model.item_emb), eps=1e-6,
                                    atol=1e-6)  # fmt: skip
