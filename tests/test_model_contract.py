"""Every model of the framework against the contract of ``recsys.testing`` (CPU, and a GPU
where one exists), plus model-specific checks against independent computations."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from recsys.data.propensity import PopularityPropensity
from recsys.models import (
    ALS,
    BPR,
    EASE,
    WMF,
    ContentKNN,
    HybridALS,
    ItemKNN,
    MostRecent,
    Popularity,
)
from recsys.testing import DEVICES, ModelContract


class TestALS(ModelContract):
    model_class = ALS


class TestALSCholesky(ModelContract):
    model_class = ALS
    model_args = {"solver": "cholesky", "reg_exponent": 1.0, "regularization": 0.05}


class TestALSRelMF(ModelContract):
    model_class = ALS
    model_args = {"correction": "relmf", "regularization": 5}
    propensity = PopularityPropensity


class TestWMFRelMF(ModelContract):
    model_class = WMF
    model_args = {"correction": "relmf", "batch_users": 32}
    propensity = PopularityPropensity
    epochs = 5


class TestBPRIPW(ModelContract):
    model_class = BPR
    model_args = {"correction": "ipw", "batch_size": 256}
    propensity = PopularityPropensity
    epochs = 5


class TestPopularity(ModelContract):
    model_class = Popularity


class TestMostRecent(ModelContract):
    model_class = MostRecent  # synthetic data: publication = each item's first interaction

    @pytest.mark.parametrize("device", DEVICES)
    def test_fits_and_beats_chance(self, tmp_path, device):
        """Recency is chance on synthetic data: the ranking is checked instead (the latest
        first interactions first, to float32 days' resolution, a few seconds)."""
        model, dm, _ = self.fit(tmp_path, device)
        times = dm.training_data.item_published
        items, _ = model.recommend(torch.tensor([0]), k=10, exclude_seen=False)
        got = times[items[0].cpu().numpy()]
        assert np.all(np.diff(got) <= 5) and got.min() >= np.sort(times)[-10] - 5


class TestBPR(ModelContract):
    model_class = BPR
    model_args = {"negatives": "popularity", "item_bias": True, "batch_size": 256}
    epochs = 5


class TestBPRCosine(ModelContract):
    model_class = BPR
    model_args = {"batch_size": 256, "lr_schedule": "cosine", "lr": 0.05}
    epochs = 4

    def test_learning_rate_follows_the_cosine_to_zero(self, tmp_path):
        seen = []

        class Record(L.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                seen.append(trainer.optimizers[0].param_groups[0]["lr"])

        dm = self.datamodule()
        model = self.build(dm)
        trainer = L.Trainer(
            max_epochs=self.epochs, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, limit_val_batches=0, callbacks=[Record()],
            default_root_dir=tmp_path,
        )  # fmt: skip
        trainer.fit(model, datamodule=dm)
        total = self.epochs * model.steps_per_epoch()
        assert len(seen) == total > 8
        want = 0.05 * (1 + np.cos(np.pi * np.arange(total) / total)) / 2
        np.testing.assert_allclose(seen, want, rtol=1e-6, atol=1e-9)


class TestBPRSharedNegatives(ModelContract):
    model_class = BPR
    model_args = {"shared_negatives": True, "n_negatives": 20, "batch_size": 256}
    epochs = 5


class TestBPRHogwild(ModelContract):
    """Per-triple SGD kernel; on one thread, so that a seed fixes the result."""

    model_class = BPR
    model_args = {"optimizer": "hogwild", "item_bias": True, "lr": 0.05}
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
    model_class = WMF
    model_args = {"batch_users": 32}
    epochs = 5


class TestItemKNN(ModelContract):
    model_class = ItemKNN


class TestItemKNNBM25(ModelContract):
    model_class = ItemKNN
    model_args = {"similarity": "bm25", "neighbors": 30}


class TestEASE(ModelContract):
    model_class = EASE


class TestContent(ModelContract):
    model_class = ContentKNN
    model_args = {"dims": 8}


class TestHybrid(ModelContract):
    model_class = HybridALS
    model_args = {"dims": 8, "n_min": 15}  # some users by content, most by iALS


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
    np.testing.assert_allclose(knn.score_users(users).numpy(), x[:50] @ keep, rtol=1e-5, atol=1e-6)

    ease, dm, _ = TestEASE().fit(tmp_path / "ease")
    lam = ease.hparams.regularization
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(ease.score_users(users).numpy(), x[:50] @ b, rtol=1e-4, atol=1e-6)

    # held-out users (strong generalization): scored from any history, empty rows included
    h = (np.random.default_rng(0).random((7, x.shape[1])) < 0.05).astype(np.float64)
    h[3] = 0.0
    rows, cols = (torch.from_numpy(a) for a in np.nonzero(h))
    conf = torch.ones(len(rows))
    for model, dense in ((knn, keep), (ease, b)):
        folded = model.score_history(rows, cols, conf, len(h)).numpy()
        np.testing.assert_allclose(folded, h @ dense, rtol=1e-4, atol=1e-6)


def test_ease_weights_are_row_contiguous(tmp_path):
    ease, _, _ = TestEASE().fit(tmp_path)
    assert ease.weights.is_contiguous()  # scoring reads rows of B


class NoisyWhileTraining(Popularity):
    """Popularity whose scores get noise while the module is in training mode (as dropout
    does in Mult-VAE or SASRec): inference must switch to eval mode to be deterministic."""

    def score(self, users: torch.Tensor) -> torch.Tensor:
        scores = super().score(users)
        return scores + torch.rand_like(scores) * 100 if self.training else scores

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        scores = super().score_folded(rows, cols, conf, n_users)
        return scores + torch.rand_like(scores) * 100 if self.training else scores


class TestNoisyWhileTraining(ModelContract):
    model_class = NoisyWhileTraining


def test_the_mode_check_fails_when_inference_keeps_the_training_mode(tmp_path):
    """The contract's mode check is no formality: with the base class's switch to eval mode
    taken out of inference, the same model fails it."""
    from recsys.models.base import RecommenderModule

    def unswitched(name):
        method = getattr(RecommenderModule, name).__wrapped__  # without @inference
        return lambda self, *a, **k: torch.no_grad()(method)(self, *a, **k)

    class KeepsMode(NoisyWhileTraining):
        score_users = unswitched("score_users")
        score_batch = unswitched("score_batch")
        score_history = unswitched("score_history")
        recommend = unswitched("recommend")

    class CheckKeepsMode(ModelContract):
        model_class = KeepsMode

    class CheckSwitches(ModelContract):
        model_class = NoisyWhileTraining

    with pytest.raises(AssertionError, match="not equal|not close"):
        CheckKeepsMode().test_inference_ignores_the_module_mode(tmp_path)
    CheckSwitches().test_inference_ignores_the_module_mode(tmp_path / "switched")
