"""One contract every model passes (a reusable mixin, as implicit's and lenskit's tests).

A model class's test subclasses ``ModelContract`` and names its config (``model``) and any
overrides. Each contract test runs on the CPU and, where one exists, on a GPU.
"""

from __future__ import annotations

import hydra
import lightning as L
import numpy as np
import pytest
import torch
from helpers import SMALL_DATA, compose_config

from recsys.checkpoint import load_model
from recsys.data.item_times import publication_times
from recsys.errors import UnknownIdError
from recsys.recommend import recommend
from recsys.runner import build_datamodule

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class ModelContract:
    model: str = ""
    overrides: tuple[str, ...] = ()
    epochs: int = 3

    def fit(self, tmp_path, device: str = "cpu", seed: int = 3):
        cfg = compose_config(
            "train",
            [*SMALL_DATA, f"model={self.model}", f"seed={seed}", *self.overrides],
            tmp_path,
        )
        L.seed_everything(cfg.seed, verbose=False)
        dm = build_datamodule(cfg)
        model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
        trainer = L.Trainer(
            accelerator="gpu" if device == "cuda" else "cpu",
            devices=1,
            max_epochs=self.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            num_sanity_val_steps=0,
            deterministic=True,
        )
        trainer.fit(model, datamodule=dm)
        trainer.test(model, datamodule=dm, verbose=False)
        return model, dm, trainer

    @pytest.mark.parametrize("device", DEVICES)
    def test_fits_and_beats_chance(self, tmp_path, device):
        model, dm, _ = self.fit(tmp_path, device)
        ndcg = model.metrics["test"]["test/ndcg@20"]
        # a random ranking of ~200 items finds ~10% of a user's held-out items in the top 20
        assert 0.12 < ndcg <= 1

    @pytest.mark.parametrize("device", DEVICES)
    def test_same_seed_same_scores(self, tmp_path, device):
        users = torch.arange(40)
        a, _, _ = self.fit(tmp_path / "a", device)
        b, _, _ = self.fit(tmp_path / "b", device)
        with torch.no_grad():
            torch.testing.assert_close(
                a.score(users.to(a.device)), b.score(users.to(b.device)), rtol=0, atol=0
            )

    @pytest.mark.parametrize("device", DEVICES)
    def test_checkpoint_round_trip_gives_identical_scores(self, tmp_path, device):
        model, _, trainer = self.fit(tmp_path, device)
        path = tmp_path / "model.ckpt"
        trainer.save_checkpoint(path)
        loaded = load_model(path, map_location=model.device)
        users = torch.arange(model.n_users, device=model.device)
        with torch.no_grad():
            torch.testing.assert_close(loaded.score(users), model.score(users), rtol=0, atol=0)
        assert loaded.user_ids == model.user_ids and loaded.item_ids == model.item_ids
        assert (loaded.seen != model.seen).nnz == 0

    def test_recommend_excludes_seen_and_rejects_unknown_users(self, tmp_path):
        model, dm, _ = self.fit(tmp_path)
        users = [model.user_ids[0], model.user_ids[7]]
        for u, row in zip(users, recommend(model, users, k=15)):
            seen = {model.item_ids[i] for i in model.seen[model.user_ids.index(u)].indices}
            assert len(row["items"]) == 15 and not seen & set(row["items"])
            assert row["scores"] == sorted(row["scores"], reverse=True)
        with pytest.raises(UnknownIdError, match="unknown user id"):
            recommend(model, ["no-such-user"], k=5)
        assert np.isfinite(model.score(torch.arange(3)).detach().cpu().numpy()).all()


class TestALS(ModelContract):
    model = "als"


class TestALSCholesky(ModelContract):
    model = "als"
    overrides = ("model.solver=cholesky", "model.reg_exponent=1.0", "model.regularization=0.05")


class TestALSRelMF(ModelContract):
    model = "als"
    overrides = ("propensity=popularity", "model.correction=relmf", "model.regularization=5")


class TestWMFRelMF(ModelContract):
    model = "wmf"
    overrides = ("propensity=popularity", "model.correction=relmf", "model.batch_users=32")
    epochs = 5


class TestBPRIPW(ModelContract):
    model = "bpr"
    overrides = ("propensity=popularity", "model.correction=ipw", "model.batch_size=256")
    epochs = 5


class TestPopularity(ModelContract):
    model = "popularity"


class TestMostRecent(ModelContract):
    model = "most_recent"  # synthetic data: publication = each item's first interaction

    @pytest.mark.parametrize("device", DEVICES)
    def test_fits_and_beats_chance(self, tmp_path, device):
        """Recency is chance on synthetic data: the ranking is checked instead (the latest
        first interactions first, to float32 days' resolution, a few seconds)."""
        model, dm, _ = self.fit(tmp_path, device)
        times = publication_times(dm.dataset, dm.split)
        items, _ = model.recommend(torch.tensor([0]), k=10, exclude_seen=False)
        got = times[items[0].cpu().numpy()]
        assert np.all(np.diff(got) <= 5) and got.min() >= np.sort(times)[-10] - 5


class TestBPR(ModelContract):
    model = "bpr"
    overrides = ("model.negatives=popularity", "model.item_bias=true", "model.batch_size=256")
    epochs = 5


class TestBPRCosine(ModelContract):
    model = "bpr"
    overrides = ("model.batch_size=256", "model.lr_schedule=cosine", "model.lr=0.05")
    epochs = 4

    def test_learning_rate_follows_the_cosine_to_zero(self, tmp_path):
        seen = []

        class Record(L.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                seen.append(trainer.optimizers[0].param_groups[0]["lr"])

        cfg = compose_config("train", [*SMALL_DATA, "model=bpr", *self.overrides], tmp_path)
        dm = build_datamodule(cfg)
        model = hydra.utils.instantiate(cfg.model, n_users=dm.n_users, n_items=dm.n_items)
        trainer = L.Trainer(
            max_epochs=self.epochs, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, limit_val_batches=0, callbacks=[Record()],
        )  # fmt: skip
        trainer.fit(model, datamodule=dm)
        total = self.epochs * model.steps_per_epoch()
        assert len(seen) == total > 8
        want = 0.05 * (1 + np.cos(np.pi * np.arange(total) / total)) / 2
        np.testing.assert_allclose(seen, want, rtol=1e-6, atol=1e-9)


class TestBPRSharedNegatives(ModelContract):
    model = "bpr"
    overrides = ("model.shared_negatives=true", "model.n_negatives=20", "model.batch_size=256")
    epochs = 5


class TestBPRHogwild(ModelContract):
    """Per-triple SGD kernel; on one thread, so that a seed fixes the result."""

    model = "bpr"
    overrides = ("model.optimizer=hogwild", "model.item_bias=true", "model.lr=0.05")
    epochs = 5

    @pytest.fixture(autouse=True)
    def one_thread(self):
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(1)
        yield
        numba.set_num_threads(before)

    def fit(self, tmp_path, device: str = "cpu", seed: int = 3):
        if device != "cpu":
            pytest.skip("optimizer=hogwild runs on the CPU only")
        return super().fit(tmp_path, device, seed)


class TestWMF(ModelContract):
    model = "wmf"
    overrides = ("model.batch_users=32",)
    epochs = 5


class TestItemKNN(ModelContract):
    model = "itemknn"


class TestItemKNNBM25(ModelContract):
    model = "itemknn"
    overrides = ("model.similarity=bm25", "model.neighbors=30")


class TestEASE(ModelContract):
    model = "ease"


class TestContent(ModelContract):
    model = "content"
    overrides = ("model.dims=8",)


class TestHybrid(ModelContract):
    model = "hybrid"
    overrides = ("model.dims=8", "model.n_min=15")  # some users by content, most by iALS


def test_ease_refuses_what_would_not_fit(monkeypatch, tmp_path):
    from recsys.errors import RecsysError
    from recsys.models import neighbors

    monkeypatch.setattr(neighbors, "available_memory_bytes", lambda device: 1000)
    with pytest.raises(RecsysError, match=r"EASE with 200 items needs about 0\.0 GiB"):
        TestEASE().fit(tmp_path)
    assert neighbors.EASE.memory_needed(40_981) == 2 * 4 * 40_981**2


def test_itemknn_and_ease_match_dense_closed_forms(tmp_path):
    """Scores against numpy: cosine top-N neighbourhoods, and EASE's closed form."""
    knn, dm, _ = TestItemKNN().fit(tmp_path / "knn")
    x = (dm.split.train.matrix.toarray() > 0).astype(np.float64)
    norms = np.linalg.norm(x, axis=0)
    sim = ((x.T @ x) / (norms[:, None] * norms[None, :] + 1e-12)).astype(np.float32)
    np.fill_diagonal(sim, -np.inf)  # similarities are ranked as float32, ties by item index
    k = knn.neighbor_items.shape[1]
    keep = np.zeros_like(sim)
    for i in range(sim.shape[0]):
        top = np.argsort(-sim[i], kind="stable")[:k]
        keep[i, top] = np.maximum(sim[i, top], 0)
    users = torch.arange(50)
    np.testing.assert_allclose(knn.score(users).numpy(), x[:50] @ keep, rtol=1e-5, atol=1e-6)

    ease, dm, _ = TestEASE().fit(tmp_path / "ease")
    lam = ease.hparams.regularization
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(ease.score(users).numpy(), x[:50] @ b, rtol=1e-4, atol=1e-6)

    # held-out users (strong generalization): scored from any history, empty rows included
    h = (np.random.default_rng(0).random((7, x.shape[1])) < 0.05).astype(np.float64)
    h[3] = 0.0
    rows, cols = (torch.from_numpy(a) for a in np.nonzero(h))
    conf = torch.ones(len(rows))
    for model, dense in ((knn, keep), (ease, b)):
        folded = model.score_folded(rows, cols, conf, len(h)).numpy()
        np.testing.assert_allclose(folded, h @ dense, rtol=1e-4, atol=1e-6)


def test_ease_weights_are_row_contiguous(tmp_path):
    ease, _, _ = TestEASE().fit(tmp_path)
    assert ease.weights.is_contiguous()  # scoring reads rows of B
