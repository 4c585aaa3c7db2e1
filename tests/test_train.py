"""End to end, in process: train -> run directory -> eval -> recommend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import SMALL_DATA, compose_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recsys.errors import UnknownIdError
from recsys.models.checkpoint import load_model
from recsys.runs.evaluate import evaluate
from recsys.runs.fit import train
from recsys.serving import recommend

FAST = [*SMALL_DATA, "trainer.max_epochs=3", "trainer.enable_progress_bar=false"]


def run_train(tmp_path: Path, name: str, overrides: list[str]):
    out = tmp_path / name
    cfg = compose_config("train", [*FAST, *overrides], out)
    value, metrics = train(cfg)
    return out, value, metrics


@pytest.fixture(scope="module")
def als_run(tmp_path_factory):
    return run_train(tmp_path_factory.mktemp("als"), "run", [])


def test_run_directory_contents(als_run):
    out, value, metrics = als_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in on_disk.items() if k.startswith("test/")} == metrics
    # the best epoch's validation metrics: the checkpoint kept is that epoch's, and its value
    # is what recsys-train returns (the best val/ndcg@20)
    best = on_disk["best_epoch"]
    assert (out / "checkpoints" / f"epoch_{best:03d}.ckpt").is_file()
    assert on_disk["val/ndcg@20"] == pytest.approx(value, rel=1e-6)
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    per_epoch = {e.step: e.value for e in acc.Scalars("epoch/val/ndcg@20")}
    assert sorted(per_epoch) == [0, 1, 2]  # against the epoch, not the global step
    assert max(per_epoch.values()) == pytest.approx(on_disk["val/ndcg@20"], rel=1e-6)
    assert per_epoch[best] == pytest.approx(on_disk["val/ndcg@20"], rel=1e-6)
    for metric in ("recall", "recall_norm", "ndcg", "precision", "map", "mrr", "hit_rate"):
        for k in (10, 20):
            assert 0 <= on_disk[f"test/{metric}@{k}"] <= 1
    assert on_disk["test/coverage@20"] >= on_disk["test/coverage@10"] > 0

    per_user = pd.read_parquet(out / "per_user_metrics.parquet")
    assert len(per_user) == per_user["user"].nunique() > 0
    assert (per_user["n_test"] >= 1).all()
    assert (per_user["n_train"] >= 1).all() and per_user["n_train"].dtype.kind == "i"
    assert per_user["ndcg@20"].astype("float64").mean() == pytest.approx(
        on_disk["test/ndcg@20"], rel=1e-9
    )

    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and any(p.startswith("epoch_") for p in ckpts)
    assert value is not None and 0 < value <= 1  # best val/ndcg@20

    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert {"data/train_strength", "data/train_confidence"} <= set(acc.Tags()["histograms"])
    assert "data/summary/text_summary" in acc.Tags()["tensors"]
    scalars = acc.Tags()["scalars"]
    assert {"val/ndcg@20", "test/ndcg@20", "train/loss", "time/train_epoch_s"} <= set(scalars)
    assert len(acc.Scalars("val/ndcg@20")) == 3  # one per epoch
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams
    assert b"model/factors" in hparams["_hparams_/session_start_info"]


def test_training_loss_decreases_and_als_beats_popularity(als_run, tmp_path):
    out, _, als = als_run
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    losses = [e.value for e in acc.Scalars("train/loss")]
    assert losses == sorted(losses, reverse=True)
    _, _, pop = run_train(tmp_path, "pop", ["model=popularity"])
    assert als["test/ndcg@20"] > 1.3 * pop["test/ndcg@20"]


def test_same_seed_same_metrics(als_run, tmp_path):
    out, _, _ = als_run
    again, _, _ = run_train(tmp_path, "again", [])
    assert (again / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()
    other, _, _ = run_train(tmp_path, "other_seed", ["seed=7"])
    assert (other / "metrics.json").read_bytes() != (out / "metrics.json").read_bytes()


def best_checkpoint(out: Path) -> Path:
    return next(p for p in (out / "checkpoints").glob("epoch_*.ckpt"))


def test_eval_reproduces_test_metrics_exactly(als_run, tmp_path):
    out, _, metrics = als_run
    cfg = compose_config(
        "eval",
        [f"ckpt_path={best_checkpoint(out)}", "trainer.enable_progress_bar=false"],
        tmp_path / "eval",
    )
    assert evaluate(cfg) == metrics
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "eval" / "per_user_metrics.parquet"),
        pd.read_parquet(out / "per_user_metrics.parquet"),
    )


def test_eval_with_other_metrics_and_adjustment(als_run, tmp_path):
    out, _, metrics = als_run
    base = [f"ckpt_path={best_checkpoint(out)}", "trainer.enable_progress_bar=false"]
    debias = [*base, "evaluator=debias", "propensity=popularity"]
    plain = evaluate(compose_config("eval", debias, tmp_path / "a"))
    assert plain["test/ndcg@20"] == metrics["test/ndcg@20"]  # same ranking, more metrics
    assert {"test/snips_ndcg@20", "test/arp@20", "test/gini@20"} <= set(plain)
    adjusted = evaluate(
        compose_config("eval", [*debias, "popularity_adjustment=1.0"], tmp_path / "b")
    )
    assert adjusted["test/arp@20"] < plain["test/arp@20"]  # less popular lists


def test_recommend_from_a_new_users_history(als_run):
    """A user the model never saw: their vector solved from their items through the model's
    own confidence (linear, alpha from the run), the ranking brute-forced from it."""
    from recsys.serving import recommend_from_history

    out, _, _ = als_run
    model = load_model(best_checkpoint(out))
    alpha = model.run_config["resolved"]["confidence"]["alpha"]
    history, strengths = [model.item_ids[i] for i in (4, 9, 30)], [1.0, 3.0, 2.0]
    got = recommend_from_history(model, history, k=8, strengths=strengths)
    x = model.fold_in(torch.tensor([4, 9, 30]), 1 + alpha * torch.tensor(strengths))
    scores = (x @ model.item_factors.T).numpy()
    order = [i for i in np.argsort(-scores, kind="stable") if i not in (4, 9, 30)][:8]
    assert got["items"] == [model.item_ids[i] for i in order]
    np.testing.assert_allclose(got["scores"], scores[order], rtol=1e-5)
    explicit = recommend_from_history(
        model, history, k=8, confidences=list(1 + alpha * np.array(strengths))
    )
    assert explicit["items"] == got["items"]
    with pytest.raises(UnknownIdError, match="unknown item"):
        recommend_from_history(model, [history[0], "no-such-item"])


def test_recommend_from_checkpoint_alone(als_run):
    out, _, _ = als_run
    model = load_model(best_checkpoint(out))
    users = [model.user_ids[5], model.user_ids[17]]
    result = recommend(model, users, k=7)
    scores = model.score(torch.tensor([5, 17]))
    for row, res, u in zip(scores, result, users):
        seen = set(model.seen[model.user_ids.index(u)].indices.tolist())
        order = sorted(
            (i for i in range(model.n_items) if i not in seen), key=lambda i: (-row[i].item(), i)
        )
        assert res["user"] == u
        assert res["items"] == [model.item_ids[i] for i in order[:7]]
        assert not {model.item_ids[i] for i in seen} & set(res["items"])
    with_seen = recommend(model, users[:1], k=50, exclude_seen=False)[0]["items"]
    assert set(with_seen) & {model.item_ids[i] for i in model.seen[5].indices}
    with pytest.raises(UnknownIdError, match="123456"):
        recommend(model, [users[0], 123456], k=5)
    # string forms of ids are accepted
    assert recommend(model, [str(users[0])], k=3)[0]["items"] == result[0]["items"][:3]
    assert np.asarray(model.seen.sum(1)).ravel().min() >= 1


def test_strong_generalization_folds_in_held_out_users(tmp_path):
    over = ["split=strong_generalization", "data.n_users=600"]
    _, _, als = run_train(tmp_path, "sg_als", over)
    _, _, pop = run_train(tmp_path, "sg_pop", [*over, "model=popularity"])
    assert als["test/ndcg@20"] > 1.3 * pop["test/ndcg@20"]
    _, _, ease = run_train(tmp_path, "sg_ease", [*over, "model=ease"])
    assert ease["test/ndcg@20"] > 1.3 * pop["test/ndcg@20"]


def test_cache_follows_the_source_file(tmp_path):
    from recsys.data.datamodule import RecsysDataModule

    log = tmp_path / "log.csv"
    lines = ["u,i,t"] + [f"{u},{(u * 7 + k) % 13},{k}" for u in range(30) for k in range(6)]
    log.write_text("\n".join(lines) + "\n")
    cfg = compose_config(
        "train",
        [
            "data=events",
            f"data.path={log}",
            "data.columns.user=u",
            "data.columns.item=i",
            "data.columns.timestamp=t",
        ],
        tmp_path / "run",
    )
    assert not RecsysDataModule.from_config(cfg).cache_hit
    assert RecsysDataModule.from_config(cfg).cache_hit
    with log.open("a") as f:
        f.write("99,1,5\n")
    again = RecsysDataModule.from_config(cfg)
    assert not again.cache_hit and again.n_users == 31
