"""The model contract as a reusable test kit (in the manner of implicit's and lenskit's).

Any model, in this repository or outside it, is checked by subclassing ``ModelContract`` in a
pytest file and naming the class (and its arguments)::

    from recsys.testing import ModelContract
    from my_models import MyModel

    class TestMyModel(ModelContract):
        model_class = MyModel
        model_args = {"factors": 16}

pytest then runs every check below on a small synthetic dataset (300 users x 200 items, about
20 items each, a random 70/10/20 split, confidence c = 1 + 2 r), on the CPU and, where one is
present, on a GPU. Checks that do not apply are skipped (fold-in for a model without it,
sampling streams for a model that samples nothing, fitting without a Trainer for models
trained by gradients). Needs pytest (``pip install -e ".[test]"``).
"""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import lightning as L
import numpy as np
import pytest
import torch

from recsys.data.confidence import Confidence, Linear
from recsys.data.datamodule import RecsysDataModule
from recsys.data.datasets import SyntheticDataset
from recsys.data.propensity import Propensity
from recsys.data.splits import RandomHoldout
from recsys.errors import RecsysError, UnknownIdError
from recsys.models import training as training_helpers
from recsys.models.base import ClosedFormModule, OnePassModule, RecommenderModule
from recsys.models.checkpoint import load_model
from recsys.serving import history_confidences, recommend

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
_FITTED: dict = {}  # (contract class, device) -> fit(), shared by the checks that only read it


def small_datamodule(
    seed: int = 3,
    confidence: Confidence | None = None,
    propensity: Propensity | None = None,
    **dataset,
) -> RecsysDataModule:
    """The contract's data, set up: ``SyntheticDataset`` with 300 users, 200 items and about
    20 interactions per user (``dataset`` overrides these), a random 70/10/20 split by
    ``seed``, ``confidence`` (default c = 1 + 2 r) and ``propensity`` (default none)."""
    args = {"n_users": 300, "n_items": 200, "mean_interactions": 20, **dataset}
    dm = RecsysDataModule(
        dataset=SyntheticDataset(**args),
        split=RandomHoldout(test_ratio=0.2, val_ratio=0.1),
        confidence=confidence or Linear(alpha=2.0),
        propensity=propensity,
        seed=seed,
    )
    dm.setup("fit")
    return dm


class ModelContract:
    """Checks every model passes; subclass it and set ``model_class``.

    Attributes:
        model_class: the model under test (a ``RecommenderModule``).
        model_args: its arguments besides ``n_users`` and ``n_items``.
        epochs: training epochs of each fit.
        propensity: a factory of the run's ``Propensity`` (e.g. ``PopularityPropensity``),
            for models with a popularity correction; None: no propensity model.
        min_ndcg: the test ndcg@20 the fitted model must exceed (a random ranking of the
            ~200 items scores about 0.1).
    """

    model_class: type[RecommenderModule]
    model_args: dict = {}
    epochs: int = 3
    propensity: Callable[[], Propensity] | None = None
    min_ndcg: float = 0.12

    # -- building ---------------------------------------------------------------------------
    def datamodule(self, seed: int = 3) -> RecsysDataModule:
        return small_datamodule(seed, propensity=self.propensity() if self.propensity else None)

    def build(self, dm: RecsysDataModule) -> RecommenderModule:
        return self.model_class(n_users=dm.n_users, n_items=dm.n_items, **self.model_args)

    def trust(self) -> list[str]:
        """The package of ``model_class``, which its checkpoints may name."""
        return [self.model_class.__module__.split(".")[0]]

    def fit(self, tmp_path, device: str = "cpu", seed: int = 3):
        """``(model, datamodule, trainer)``: the model fitted for ``epochs`` by a Lightning
        Trainer on ``device`` and tested (``model.metrics["test"]``)."""
        L.seed_everything(seed, verbose=False)
        dm = self.datamodule(seed)
        model = self.build(dm)
        model.evaluator.prepare(dm.training_data)
        trainer = L.Trainer(
            accelerator="gpu" if device == "cuda" else "cpu",
            devices=1,
            max_epochs=self.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=True,
            default_root_dir=tmp_path,
        )
        trainer.fit(model, datamodule=dm)
        trainer.test(model, datamodule=dm, verbose=False)
        return model, dm, trainer

    def fitted(self, tmp_path, device: str = "cpu"):
        """``fit(tmp_path, device)``, once per contract class and device: the checks that
        only read the fitted model share it (each leaves it as it found it)."""
        key = (type(self), device)
        if key not in _FITTED:
            _FITTED[key] = self.fit(tmp_path, device)
        return _FITTED[key]

    # -- the checks -------------------------------------------------------------------------
    @pytest.mark.parametrize("device", DEVICES)
    def test_fits_and_beats_chance(self, tmp_path, device):
        model, _, _ = self.fitted(tmp_path, device)
        ndcg = model.metrics["test"]["test/ndcg@20"]
        assert self.min_ndcg < ndcg <= 1

    @pytest.mark.parametrize("device", DEVICES)
    def test_same_seed_same_scores(self, tmp_path, device):
        users = torch.arange(40)
        a, _, _ = self.fitted(tmp_path / "a", device)
        b, _, _ = self.fit(tmp_path / "b", device)
        torch.testing.assert_close(a.score_users(users), b.score_users(users), rtol=0, atol=0)

    @pytest.mark.parametrize("device", DEVICES)
    def test_checkpoint_round_trip(self, tmp_path, device):
        """Scores, ids, training items and confidences, the fitted confidence and the data
        fingerprint survive a checkpoint; the loaded model is in eval mode."""
        model, dm, trainer = self.fitted(tmp_path, device)
        path = tmp_path / "model.ckpt"
        trainer.save_checkpoint(path)
        loaded = load_model(path, map_location=model.device, trusted_packages=self.trust())
        assert not loaded.training
        users = torch.arange(model.n_users)
        torch.testing.assert_close(
            loaded.score_users(users), model.score_users(users), rtol=0, atol=0
        )
        assert loaded.user_ids == model.user_ids and loaded.item_ids == model.item_ids
        assert (loaded.seen != model.seen).nnz == 0
        assert (loaded.train_confidence != dm.training_data.confidence).nnz == 0
        assert loaded.data_fingerprint == dm.fingerprint
        state, saved = loaded.confidence.state(), dm.training_data.confidence_model.state()
        assert state["class"] == saved["class"] and state["params"] == saved["params"]
        for name, value in saved["fitted"].items():
            torch.testing.assert_close(state["fitted"][name], value)

    def test_recommend_excludes_seen_and_rejects_unknown_users(self, tmp_path):
        model, _, _ = self.fitted(tmp_path)
        users = [model.user_ids[0], model.user_ids[7]]
        for u, row in zip(users, recommend(model, users, k=15)):
            seen = {model.item_ids[i] for i in model.seen[model.user_ids.index(u)].indices}
            assert len(row["items"]) == 15 and not seen & set(row["items"])
            assert row["scores"] == sorted(row["scores"], reverse=True)
        with pytest.raises(UnknownIdError, match="unknown user id"):
            recommend(model, ["no-such-user"], k=5)
        assert np.isfinite(model.score_users(torch.arange(3)).cpu().numpy()).all()

    def test_inference_ignores_the_module_mode(self, tmp_path):
        """Evaluation batches, scores, top-k lists and fold-in give the same results whether
        the module was left in training or in eval mode, and leave the mode as it was."""
        model, dm, _ = self.fitted(tmp_path)
        mode = model.training
        batch = next(iter(dm.test_dataloader()))
        users = torch.arange(50)
        history = _history(dm, torch.arange(4))
        results = {}
        for training in (False, True):
            model.train(training)
            out = [model.score_batch(batch), model.score_users(users), *model.recommend(users)]
            if _folds_in(model, history):
                out.append(model.score_history(*history))
            assert model.training is training
            results[training] = out
        model.train(mode)
        for got, want in zip(results[True], results[False]):
            torch.testing.assert_close(got, want, rtol=0, atol=0)

    def test_fold_in(self, tmp_path):
        """Where the model folds in new users: finite scores for every item, each user scored
        as if alone, the confidence of a history equal to a training user's with the same
        items, and the same scores after a checkpoint round trip."""
        model, dm, trainer = self.fitted(tmp_path)
        users = torch.arange(6)
        history = _history(dm, users)
        if not _folds_in(model, history):
            pytest.skip(f"{self.model_class.__name__} does not fold in new users")
        together = model.score_history(*history)
        assert together.shape == (len(users), model.n_items)
        assert torch.isfinite(together).all()
        rows, cols, conf, _ = history
        for r in range(len(users)):
            mine = rows == r
            alone = model.score_history(torch.zeros(int(mine.sum()), dtype=torch.int64),
                                        cols[mine], conf[mine], 1)  # fmt: skip
            torch.testing.assert_close(alone[0], together[r], rtol=1e-5, atol=1e-5)
        train = dm.training_data.train
        for u in users.tolist():
            lo, hi = train.matrix.indptr[u], train.matrix.indptr[u + 1]
            items = [model.item_ids[i] for i in train.matrix.indices[lo:hi]]
            features = {k: v[lo:hi] for k, v in train.features.items()}
            got_cols, got = history_confidences(model, items, train.matrix.data[lo:hi], features)
            np.testing.assert_array_equal(got_cols, train.matrix.indices[lo:hi])
            np.testing.assert_allclose(got, dm.training_data.confidence[u].data, rtol=1e-6)
        path = tmp_path / "model.ckpt"
        trainer.save_checkpoint(path)
        loaded = load_model(path, map_location=model.device, trusted_packages=self.trust())
        torch.testing.assert_close(loaded.score_history(*history), together, rtol=0, atol=0)

    def test_distinct_sampling_streams_per_rank(self, tmp_path):
        """A model that samples its training data draws, under several processes, its own
        stream in each (rank 0 keeping the single process's)."""
        if not self.model_class.samples_per_rank:
            pytest.skip(f"{self.model_class.__name__} samples no training data")
        users = torch.arange(60)
        scores = {}
        for rank in (None, 0, 1):
            if rank is None:
                model, _, _ = self.fitted(tmp_path / "single")
            else:
                with mock.patch.object(training_helpers, "world_and_rank", lambda r=rank: (2, r)):
                    model, _, _ = self.fit(tmp_path / f"rank{rank}")
            scores[rank] = model.score_users(users)
        torch.testing.assert_close(scores[0], scores[None], rtol=0, atol=0)
        assert not torch.equal(scores[1], scores[0])

    def test_fits_without_a_trainer(self, tmp_path):
        """A closed-form or one-pass model fitted from Python (``prepare`` + ``fit``) equals
        the one the Trainer fitted."""
        if not issubclass(self.model_class, ClosedFormModule):
            pytest.skip(f"{self.model_class.__name__} is trained by gradient steps")
        by_trainer, dm, _ = self.fitted(tmp_path)
        L.seed_everything(3, verbose=False)
        model = self.build(dm)
        model.fit(
            dm.training_data, 1 if issubclass(self.model_class, OnePassModule) else self.epochs
        )
        users = torch.arange(model.n_users)
        torch.testing.assert_close(
            model.score_users(users), by_trainer.score_users(users), rtol=0, atol=0
        )


def _history(dm: RecsysDataModule, users: torch.Tensor):
    """``score_folded``'s arguments for ``users``' training items and confidences, as new
    users 0..len(users)-1."""
    conf = dm.training_data.confidence[users.numpy()]
    rows = np.repeat(np.arange(len(users)), np.diff(conf.indptr))
    return (
        torch.from_numpy(rows),
        torch.from_numpy(conf.indices.astype(np.int64)),
        torch.from_numpy(conf.data.astype(np.float32)),
        len(users),
    )


def _folds_in(model: RecommenderModule, history) -> bool:
    try:
        model.score_history(*history)
    except RecsysError:
        return False
    return True
