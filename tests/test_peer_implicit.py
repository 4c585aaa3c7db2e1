"""Peer check: our ALS against implicit's AlternatingLeastSquares on MovieLens 100K.

Same split, factors, regularization, iterations and confidence (implicit is fed our
confidence matrix c = 1 + alpha r with its alpha = 1, which is the same loss with alpha0 = 1),
both evaluated by our evaluator. Different random initializations, so the numbers agree only
approximately: within 5% relative.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from helpers import compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.models import ALS
from recsys.runs.fit import train

implicit_als = pytest.importorskip(
    "implicit.cpu.als", reason="implicit is not installed (pip install -e '.[test]')"
)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_als_matches_implicit_on_ml100k(shared_data, tmp_path, solver, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(shared_data))
    cfg = compose_config(
        "train",
        [
            "experiment=ml100k_als",
            f"model.solver={solver}",
            "trainer.enable_progress_bar=false",
            "~logger",
            "~callbacks",  # test the final (15th) iteration's factors, as implicit's
        ],
        tmp_path / "ours",
    )
    _, ours = train(cfg)

    dm = RecsysDataModule.from_config(cfg)
    peer = implicit_als.AlternatingLeastSquares(
        factors=cfg.model.factors,
        regularization=cfg.model.regularization,
        alpha=1.0,
        iterations=cfg.trainer.max_epochs,
        use_cg=solver == "cg",
        random_state=0,
    )
    peer.fit(dm.training_data.confidence, show_progress=False)
    model = ALS(dm.n_users, dm.n_items, factors=cfg.model.factors)
    model.user_factors.copy_(torch.from_numpy(peer.user_factors))
    model.item_factors.copy_(torch.from_numpy(peer.item_factors))
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.test(model, datamodule=dm, verbose=False)
    theirs = model.metrics["test"]

    print(
        f"\nml-100k, {solver}: "
        + ", ".join(
            f"{n} ours {ours[n]:.4f} implicit {theirs[n]:.4f}"
            for n in ("test/ndcg@20", "test/recall@20")
        )
    )
    for name in ("test/ndcg@20", "test/recall@20"):
        assert ours[name] == pytest.approx(theirs[name], rel=0.05), (name, ours, theirs)
    # and both are far from a trivial model
    assert ours["test/ndcg@20"] > 0.3
