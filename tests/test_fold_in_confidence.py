"""A new user's history is weighted by the confidence fitted at training (bm25, tfidf, dwell):
``recsys-recommend history=...`` ranks as ALS's fold-in with the training-time confidences of
a training user with the same items."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import SMALL_DATA, compose_config, run_main

from recsys.data.datamodule import RecsysDataModule
from recsys.models.checkpoint import load_model
from recsys.runs.fit import train
from recsys.serving import history_confidences

pytestmark = pytest.mark.slow  # three trainings and a console script each

PUBLISHER = [
    "data=publisher_sim",
    "data.n_readers=400",
    "data.n_articles=200",
    "data.initial_articles=40",
    "data.days=15",
    "split=random",
]


@pytest.mark.parametrize(
    "data, confidence",
    [(SMALL_DATA, "bm25"), (SMALL_DATA, "tfidf"), (PUBLISHER, "dwell")],
    ids=["bm25", "tfidf", "dwell"],
)
def test_history_is_weighted_as_training_was(data, confidence, tmp_path, capsys):
    cfg = compose_config(
        "train",
        [*data, f"confidence={confidence}", "trainer.max_epochs=2", "logger=[]"],
        tmp_path,
    )
    train(cfg)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    model = load_model(ckpt)
    train_data = RecsysDataModule.from_config(cfg).training_data
    matrix = train_data.train.matrix
    u = int(np.argmax(np.diff(matrix.indptr) >= 4))  # a user with a few items
    lo, hi = matrix.indptr[u], matrix.indptr[u + 1]
    cols = matrix.indices[lo:hi].astype(np.int64)
    items = [model.item_ids[i] for i in cols]
    strengths = matrix.data[lo:hi].astype(float).tolist()
    features = {k: v[lo:hi].tolist() for k, v in train_data.train.features.items()}
    trained_conf = train_data.confidence[u].data

    _, conf = history_confidences(model, items, strengths, features)
    np.testing.assert_allclose(conf, trained_conf, rtol=1e-6)
    assert not np.allclose(trained_conf, trained_conf[0])  # the weighting does weigh

    args = [f"ckpt_path={ckpt}", f"history={items}", f"strengths={strengths}", "k=10"]
    if confidence == "dwell":
        dwell = ["null" if math.isnan(d) else repr(d) for d in features["dwell"]]
        args.append("features={dwell:[" + ",".join(dwell) + "]}")
    code, err, out = run_main("recsys-recommend", args, capsys)
    assert code == 0, err[-3000:]
    got = json.loads(out.splitlines()[0])

    x = model.fold_in(torch.from_numpy(cols), torch.from_numpy(trained_conf))
    scores = (x @ model.item_factors.T).numpy()
    order = [i for i in np.argsort(-scores, kind="stable") if i not in set(cols)][:10]
    assert got["items"] == [model.item_ids[i] for i in order]
    np.testing.assert_allclose(got["scores"], scores[order], rtol=1e-4)
