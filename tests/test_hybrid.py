"""The hybrid: routing by history, the content-to-factors map, and new articles recommended
to the readers whose tastes match them (on the simulator, against its ground truth)."""

from __future__ import annotations

import hydra
import lightning as L
import numpy as np
import pytest
import torch
from helpers import compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.errors import ConfigError
from recsys.models.checkpoint import load_model
from recsys.runs.fit import train

SIM = [
    "data=publisher_sim",
    "data.n_readers=1500",
    "data.n_articles=400",
    "data.initial_articles=60",
    "data.days=30",
    "data.sessions_per_reader=12",
    "split=temporal",
    "split.val_ratio=0",
    "confidence=binary",
    "confidence.alpha=10",
    "model.factors=16",
    "model.regularization=5",
    "model.dims=16",
]


def fit(tmp_path, extra=()):
    cfg = compose_config("train", [*SIM, "model=hybrid", *extra], tmp_path)
    L.seed_everything(0, verbose=False)
    dm = RecsysDataModule.from_config(cfg)
    model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
    trainer = L.Trainer(max_epochs=6, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return model, dm


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    return fit(tmp_path_factory.mktemp("hybrid"))


def test_routing_and_the_ridge_map_match_their_definitions(hybrid):
    model, dm = hybrid
    v = model.item_vectors.double().numpy()
    new = model.new_items.numpy()
    assert new.any() and (~new).any()  # the test period publishes new articles
    y = model.item_factors.double().numpy()
    w = np.linalg.solve(v[~new].T @ v[~new] + model.hparams.ridge * np.eye(v.shape[1]),
                        v[~new].T @ y[~new])  # fmt: skip
    np.testing.assert_allclose(model.new_item_factors.numpy(), v[new] @ w, rtol=1e-4, atol=1e-6)
    users = torch.arange(model.n_users)
    scores = model.score(users).numpy()
    history = np.diff(dm.split.train.matrix.indptr)
    items = y.copy()
    items[new] = v[new] @ w
    warm = history >= model.hparams.n_min
    np.testing.assert_allclose(
        scores[warm], model.user_factors.numpy()[warm] @ items.T.astype(np.float32),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip
    profile = model.profile_indptr.numpy()
    empty = history == 0
    assert empty.any()  # readers who arrived after the cut: popularity
    counts = np.bincount(dm.split.train.matrix.indices, minlength=model.n_items)
    np.testing.assert_allclose(scores[empty], np.tile(counts / counts.max(), (empty.sum(), 1)),
                               rtol=1e-6)  # fmt: skip
    cold = np.flatnonzero(~warm & ~empty)[:20]
    for u in cold:
        recent = model.profile_items.numpy()[profile[u] : profile[u + 1]]
        want = v[recent].sum(0) @ v.T
        np.testing.assert_allclose(scores[u], want, rtol=1e-4, atol=1e-5)


def test_new_articles_reach_the_readers_whose_tastes_match_them(hybrid, tmp_path):
    """For each new article, across the readers served by iALS: the correlation between the
    hybrid's score and the true affinity is positive, about what iALS reaches on the articles
    that have interactions; without the content map (the article's iALS factors, which no
    interaction has moved) it is about zero."""
    model, dm = hybrid
    truth = dm.dataset.truth
    users = torch.arange(model.n_users)
    history = np.diff(dm.split.train.matrix.indptr)
    readers = np.flatnonzero(history >= model.hparams.n_min)
    ids = np.asarray(dm.user_ids)[readers]
    new = np.flatnonzero(model.new_items.numpy())
    articles = np.asarray(dm.item_ids)[new]
    affinity = truth.affinity(ids.astype(np.int64))[:, articles.astype(np.int64)]

    def mean_correlation(m, items):
        scores = m.score(users).numpy()[readers][:, items]
        aff = truth.affinity(ids.astype(np.int64))[:, np.asarray(dm.item_ids)[items]]
        r = [np.corrcoef(scores[:, j], aff[:, j])[0, 1] for j in range(len(items))]
        return float(np.nanmean(r))

    assert affinity.shape == (len(readers), len(new))
    warm = np.flatnonzero(~model.new_items.numpy())
    plain, _ = fit(tmp_path, ["model.map_new_items=false"])
    with_map, without = mean_correlation(model, new), mean_correlation(plain, new)
    reference = mean_correlation(model, warm)  # iALS on articles with interactions
    assert with_map > 0.1 and with_map > without + 0.1, (with_map, without)
    assert with_map > 0.8 * reference, (with_map, reference)


@pytest.mark.parametrize("collaborative", ["wmf", "ease"])
def test_hybrid_over_any_trained_model(collaborative, tmp_path):
    """model=hybrid_cf around a trained WMF (factors: new items mapped) or EASE (no factors:
    its scores kept): warm readers get the model's scores, cold ones content, readers with no
    history popularity; the saved hybrid carries the collaborative model (it loads with the
    collaborative checkpoint deleted)."""
    data = [o for o in SIM if not o.startswith("model.")] + ["logger=[]", "trainer.max_epochs=3"]
    extra = {"wmf": ["model.factors=16"], "ease": ["model.regularization=50"]}[collaborative]
    cf_dir, hy_dir = tmp_path / "cf", tmp_path / "hybrid"
    train(compose_config("train", [*data, f"model={collaborative}", *extra], cf_dir))
    cf_ckpt = cf_dir / "checkpoints" / "last.ckpt"
    cf = load_model(cf_ckpt)
    hy_cfg = compose_config(
        "train", [*data, "model=hybrid_cf", f"model.collaborative={cf_ckpt}", "model.dims=16"],
        hy_dir,
    )  # fmt: skip
    train(hy_cfg)
    if collaborative == "wmf":  # the same ids, another split: refused before any fitting
        hybrid = ["model=hybrid_cf", f"model.collaborative={cf_ckpt}"]
        other = compose_config(
            "train", [*data, *hybrid, "split.test_ratio=0.3"], tmp_path / "other_split"
        )
        with pytest.raises(ConfigError, match="trained on another training part"):
            train(other)
    cf_ckpt.unlink()
    model = load_model(hy_dir / "checkpoints" / "last.ckpt")
    assert type(model.cf) is type(cf)
    users = torch.arange(model.n_users)
    with torch.no_grad():
        scores, want = model.score(users).numpy(), cf.score(users).numpy()
    history = model.history.numpy()
    warm, empty = history >= model.hparams.n_min, history == 0
    assert warm.any() and empty.any() and (~warm & ~empty).any()
    new = model.new_items.numpy()
    assert new.any()
    v = model.item_vectors.double().numpy()
    if collaborative == "wmf":
        u, y = (t.detach().double().numpy() for t in cf.factor_tables())
        w = np.linalg.solve(v[~new].T @ v[~new] + model.hparams.ridge * np.eye(v.shape[1]),
                            v[~new].T @ y[~new])  # fmt: skip
        want[:, new] = u @ (v[new] @ w).T
    np.testing.assert_allclose(scores[warm], want[warm], rtol=1e-4, atol=1e-5)
    profile = model.profile_indptr.numpy()
    for r in np.flatnonzero(~warm & ~empty)[:20]:
        recent = model.profile_items.numpy()[profile[r] : profile[r + 1]]
        np.testing.assert_allclose(scores[r], v[recent].sum(0) @ v.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores[empty][0], model.popularity.numpy())
