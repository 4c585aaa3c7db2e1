"""Every dataset in ../shared/data: counts as in its PROVENANCE.md, and a short ALS run."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from helpers import compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.data.datasets import (
    Coat,
    EBNeRD,
    Gowalla,
    LastFM2K,
    MovieLens100K,
    MovieLensLatestSmall,
)
from recsys.data.splits import PredefinedSplit
from recsys.runs.fit import train


def test_ml_latest_small_counts(shared_data):
    data = MovieLensLatestSmall(shared_data / "ml-latest-small").load()
    # PROVENANCE: 100,836 ratings, 610 users, 9,724 rated movies, ratings 0.5-5.0
    assert (data.n_users, data.n_items, data.nnz) == (610, 9724, 100_836)
    assert data.matrix.data.min() == 0.5 and data.matrix.data.max() == 5.0
    assert data.timestamps.min() > 0


def test_lastfm_counts(shared_data):
    data = LastFM2K(shared_data / "hetrec2011-lastfm-2k").load()
    # PROVENANCE: 1,892 users, 17,632 artists, 92,834 counts; weight min 1, max 352,698
    assert (data.n_users, data.n_items, data.nnz) == (1892, 17632, 92_834)
    assert data.matrix.data.min() == 1 and data.matrix.data.max() == 352_698


def test_gowalla_predefined_split_counts(shared_data):
    parts = Gowalla(shared_data / "gowalla-lightgcn").load_parts()
    split = PredefinedSplit().from_parts(parts, seed=0)
    assert split.train.nnz == 810_128
    assert split.test.nnz == 217_242
    assert (split.train.n_users, split.train.n_items) == (29_858, 40_981)
    assert len(np.unique(split.test.matrix.indices)) == 38_546
    assert split.val.nnz == 0


def test_coat_keeps_the_random_test_set(shared_data):
    coat = Coat(shared_data / "coat")
    parts = coat.load_parts()
    raw_train = np.loadtxt(shared_data / "coat" / "train.ascii")
    raw_test = np.loadtxt(shared_data / "coat" / "test.ascii")
    # PROVENANCE: 290 x 300; 24 self-selected and 16 random ratings per user
    assert ((raw_train > 0).sum(1) == 24).all() and ((raw_test > 0).sum(1) == 16).all()
    assert parts["train"].nnz == (raw_train >= 4).sum() == 630 + 1275
    assert parts["test"].nnz == (raw_test >= 4).sum() == 641 + 219
    split = PredefinedSplit().from_parts(parts, seed=0)
    overlap = int(((raw_train >= 4) & (raw_test >= 4)).sum())
    assert split.test.nnz == parts["test"].nnz - overlap
    test_pairs = set(zip(*np.nonzero(split.test.matrix.toarray())))
    assert test_pairs <= set(zip(*np.nonzero(raw_test >= 4)))  # test pairs come from test.ascii
    assert coat.propensities().shape == (290, 300)


def test_coat_rated_candidates_restrict_the_test_ranking(shared_data, tmp_path, monkeypatch):
    raw_test = np.loadtxt(shared_data / "coat" / "test.ascii")
    parts = Coat(shared_data / "coat", test_candidates="rated").load_parts()
    np.testing.assert_array_equal(parts["test_candidates"].matrix.toarray() > 0, raw_test > 0)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(shared_data))
    cfg = compose_config(
        "train",
        [
            "data=coat",
            "data.test_candidates=rated",
            "split=predefined",
            "model=popularity",
            "evaluator.ks=[5,20]",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    _, metrics = train(cfg)
    # at most 16 candidates: every relevant item is in the top 20, so recall@20 is 1
    assert metrics["test/recall@20"] == 1.0
    assert 0 < metrics["test/ndcg@5"] < 1
    assert metrics["test/coverage@5"] < 1


def test_ebnerd_clicks_dwell_and_exposures(shared_data):
    folder = shared_data / "ebnerd-test-fixture"
    ds = EBNeRD(folder)
    data = ds.load()
    behaviors = pd.read_parquet(folder / "behaviors.parquet")
    history = pd.read_parquet(folder / "history.parquet")
    # PROVENANCE: 1,046 impressions of 38 users; 44 users' histories
    assert len(behaviors) == 1046 and behaviors["user_id"].nunique() == 38
    assert data.n_users == 44
    n_history = int(history["article_id_fixed"].map(len).sum())
    n_clicks = int(behaviors["article_ids_clicked"].map(len).sum())
    assert ds.report.events_read == n_history + n_clicks
    assert data.features["count"].sum() == n_history + n_clicks
    assert {"dwell", "scroll", "type:history", "type:click"} <= set(data.features)
    total_dwell = np.nansum(history["read_time_fixed"].explode().astype(float)) + np.nansum(
        behaviors.explode("article_ids_clicked")["next_read_time"]
    )
    assert np.nansum(data.features["dwell"]) == pytest.approx(total_dwell)
    assert ds.exposures.n_users == 38
    assert ds.exposures.features == {} and ds.exposures.nnz > 0


def test_ml100k_counts(shared_data):
    data = MovieLens100K(shared_data / "ml-100k").load()
    assert (data.n_users, data.n_items, data.nnz) == (943, 1682, 100_000)


@pytest.mark.parametrize(
    "overrides",
    [
        ["data=ml100k"],
        ["data=ml_latest_small", "split=leave_one_out"],
        ["data=lastfm2k", "confidence=log"],
        ["data=gowalla", "split=predefined"],
        ["data=coat", "split=predefined"],
        ["data=ebnerd", "confidence=dwell"],
    ],
    ids=lambda o: "-".join(o),
)
def test_short_als_run_on_each_dataset(shared_data, tmp_path, monkeypatch, overrides):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(shared_data))
    cfg = compose_config(
        "train",
        [
            *overrides,
            "trainer.max_epochs=1",
            "model.factors=16",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    _, metrics = train(cfg)
    assert 0 < metrics["test/ndcg@20"] <= 1
    assert 0 < metrics["test/recall@20"] <= 1


@pytest.mark.parametrize("data", ["ml_latest_small", "gowalla"])
def test_second_load_hits_the_cache(shared_data, tmp_path, monkeypatch, data):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(shared_data))
    split = "predefined" if data == "gowalla" else "random"
    cfg = compose_config("train", [f"data={data}", f"split={split}"], tmp_path)
    start = time.perf_counter()
    first = RecsysDataModule.from_config(cfg)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    second = RecsysDataModule.from_config(cfg)
    warm = time.perf_counter() - start
    assert not first.cache_hit and second.cache_hit
    print(f"\n{data}: first load {cold:.2f} s, from cache {warm:.2f} s")
    for part in ("train", "val", "test"):
        a, b = getattr(first.split, part), getattr(second.split, part)
        assert (a.matrix != b.matrix).nnz == 0
        assert (a.user_ids == b.user_ids).all() and (a.item_ids == b.item_ids).all()
    assert first.summary == second.summary
    # a different split config is a different entry
    cfg.split.val_ratio = 0.05 if data == "gowalla" else 0.2
    assert not RecsysDataModule.from_config(cfg).cache_hit
