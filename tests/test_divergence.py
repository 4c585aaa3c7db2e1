"""Divergence is reported, not hidden: a run whose training goes numerically wrong stops with
one line naming the symptom, the epoch and the likely setting (exit status 3), and strengths
that would make every loss infinite are rejected when read (file, row, column; exit 2)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import one_line_error, run_cli

from recsys.callbacks import TrainingHealth
from recsys.data.interactions import Interactions
from recsys.errors import DataFormatError, DivergenceError


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_bpr_at_a_huge_learning_rate_stops_within_the_first_epochs(optimizer, tmp_path):
    proc = run_cli("recsys-train", "model=bpr", "model.lr=1e4", f"model.optimizer={optimizer}",
                   "trainer.max_epochs=30", "trainer.enable_progress_bar=false",
                   "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert "training diverged" in line and "model.lr=10000 is likely too high" in line
    epoch = int(re.search(r"epoch (\d+)", line).group(1))
    assert epoch <= 5  # within the first epochs, not after 30
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("value", ["1e39", "inf"])
def test_strengths_beyond_float32_are_rejected_when_read(value, tmp_path):
    log = tmp_path / "log.csv"
    rows = [f"u{u},i{(u * 3 + k) % 11},{1000 * u + k},2.5" for u in range(20) for k in range(5)]
    rows[37] = rows[37].rsplit(",", 1)[0] + f",{value}"
    log.write_text("user,item,t,value\n" + "\n".join(rows) + "\n")
    proc = run_cli("recsys-train", "data=events", f"data.path={log}", "data.columns.user=user",
                   "data.columns.item=item", "data.columns.timestamp=t", "data.columns.value=value",
                   "data.rules.strength=value", cwd=tmp_path)  # fmt: skip
    line = one_line_error(proc)
    assert f"{log}, row 38" in line and "column 'value'" in line and "out of range" in line


def test_the_loss_check_sees_each_symptom():
    """TrainingHealth against hand-made loss curves and factor tables."""

    class Model:
        def __init__(self, users):
            self.users = users

        def factor_tables(self):
            return self.users, torch.ones(3, 2)

        def divergence_hint(self):
            return "lower model.lr"

    class Trainer:
        current_epoch = 0
        callback_metrics: dict = {}

    def run(losses, users=None, **kwargs):
        health, trainer = TrainingHealth(**kwargs), Trainer()
        model = Model(torch.ones(4, 2) if users is None else users)
        for epoch, loss in enumerate(losses):
            trainer.current_epoch, trainer.callback_metrics = epoch, {"train/loss": loss}
            health.on_train_epoch_end(trainer, model)

    run([5.0, 3.0, 3.2, 2.9, 3.5, 3.4, 2.0])  # noisy but healthy: no error
    with pytest.raises(DivergenceError, match=r"rose to 9.5 at epoch 4.*lower model.lr"):
        run([5.0, 3.0, 4.0, 9.0, 9.5])
    with pytest.raises(DivergenceError, match="train/loss is nan at epoch 1"):
        run([5.0, float("nan")])
    with pytest.raises(DivergenceError, match="the user factors collapsed to zero at epoch 0"):
        run([5.0], users=torch.zeros(4, 2))


def test_interactions_refuse_strengths_that_float32_cannot_hold():
    users, items = np.array(["a", "a", "b"]), np.array([1, 2, 1])
    for bad in (1e39, np.inf, np.nan):
        with pytest.raises(DataFormatError, match="strengths must be finite numbers below"):
            Interactions.from_arrays(users, items, np.array([1.0, bad, 2.0]))
    with pytest.raises(DataFormatError, match="sum of a repeated pair"):  # 2 x 2e38 > 3.4e38
        Interactions.from_arrays(np.array(["a", "a"]), np.array([1, 1]), np.array([2e38, 2e38]))
    ok = Interactions.from_arrays(users, items, pd.Series([1.0, 3e38, 2.0]).to_numpy())
    assert ok.matrix.data.max() == pytest.approx(3e38, rel=1e-6)
