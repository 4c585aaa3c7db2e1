"""The model contract: what every model receives, what it provides, what it saves.

Users are rows and items columns, everywhere. A model

- is built from its hyperparameters alone (its constructor's arguments: one config file);
- receives the training data in one call, ``prepare(data: TrainingData)``, before training
  (the DataModule makes that call when a Trainer starts fitting; call it yourself to use a
  model without a Trainer); it reads nothing else;
- provides ``score(users) -> (B, n_items)`` and, where it can fold in users it was not
  trained on, ``score_folded``; the base class turns these into evaluation, ``recommend``
  and the other inference methods, which always run in eval mode under ``no_grad``;
- saves in its checkpoint what inference needs without the dataset: the id maps, each user's
  training items and their confidences, the fitted confidence, a fingerprint of the data,
  and the run's config.

Base classes carry the conventions: ``ClosedFormModule`` (explicit updates, one
``fit_epoch()`` per epoch, ``fit()`` without a Trainer), ``OnePassModule`` (fitted in one pass:
the Trainer stops after the first epoch), ``FactorModel`` (scores from user and item vectors).
Shared training helpers live in ``recsys.models.training``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch

from recsys.data.confidence import Confidence
from recsys.data.interactions import row_entries
from recsys.data.training_data import TrainingData
from recsys.distributed import world_and_rank
from recsys.errors import CheckpointError, ConfigError, DivergenceError, RecsysError
from recsys.evaluation import Evaluator, topk
from recsys.evaluation.evaluator import EvaluationState
from recsys.evaluation.topk_cpu import topk_excluding
from recsys.models.training import EpochStep

SCORE_BLOCK = 1 << 22  # scores per block of users in recommend (16 MiB of float32)
CHECKPOINT_FORMAT = 2  # the layout of the "recsys" section of a checkpoint


def inference(method: Callable) -> Callable:
    """Run ``method`` in eval mode (dropout and the like off) under ``no_grad``, and leave
    the module in the mode it was in."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        was_training = self.training
        self.train(False)
        try:
            with torch.no_grad():
                return method(self, *args, **kwargs)
        finally:
            self.train(was_training)

    return wrapper


def required_propensity(data: TrainingData, setting: str) -> np.ndarray:
    """``data.propensity`` ``(n_items,)``, or a ConfigError saying that ``setting`` (e.g.
    ``model.correction=relmf``) needs a propensity model."""
    if data.propensity is None:
        raise ConfigError(
            f"{setting} needs item propensities: choose a propensity model, e.g. "
            "propensity=popularity"
        )
    return data.propensity


class RecommenderModule(L.LightningModule):
    """Base class of all models (users are rows, items are columns).

    Subclasses implement ``score(users) -> (B, n_items)`` and their training, and override
    ``prepare(data)`` (calling ``super().prepare(data)`` first) to take what they need from the
    ``TrainingData``. This class runs full-ranking validation and test with
    ``self.evaluator``, and stores in each checkpoint what inference needs without the dataset.

    Attributes set by ``prepare`` (and restored from a checkpoint): ``user_ids``,
    ``item_ids`` (external ids of rows and columns), ``seen`` (``(n_users, n_items)`` binary
    CSR of training items), ``train_confidence`` (the same sparsity, training confidences
    c_ui), ``confidence`` (the fitted ``Confidence``), ``data_fingerprint``.
    """

    samples_per_rank: bool = False
    """True for models that sample their training data (BPR): under several processes each
    draws its own stream (``recsys.models.training.seed_rank_stream``); the contract checks it."""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.evaluator = Evaluator()
        self.user_ids: list | None = None
        self.item_ids: list | None = None
        self.seen: sp.csr_matrix | None = None
        self.train_confidence: sp.csr_matrix | None = None
        self.confidence: Confidence | None = None
        self.data_fingerprint: dict | None = None
        self.run_config: dict | None = None
        self.score_divisor: torch.Tensor | None = None  # theta_i^beta, see set_score_adjustment
        self.metrics: dict[str, dict[str, float]] = {}
        self.per_user: dict[str, dict[str, np.ndarray]] = {}
        self._state: EvaluationState | None = None
        self._data_buffers: tuple[str, ...] = ()
        self._scratch: torch.Tensor | None = None  # see scratch_scores
        self._scratch_open = False

    # -- what a model receives ------------------------------------------------------------
    def prepare(self, data: TrainingData) -> None:
        """Receive the training data, once before training. The base class keeps the id maps,
        the training items and confidences, the fitted confidence and the data fingerprint;
        subclasses take more (call ``super().prepare(data)`` first) and raise ConfigError for
        data they cannot use. Tensors for the model's device are best made in
        ``on_fit_start``: under a Trainer the model moves to its device after ``prepare``."""
        if (data.n_users, data.n_items) != (self.n_users, self.n_items):
            raise ConfigError(
                f"the model was built for {self.n_users} users x {self.n_items} items, the data "
                f"has {data.n_users} x {data.n_items}"
            )
        self.set_context(data.user_ids, data.item_ids, data.confidence)
        self.confidence = data.confidence_model
        self.data_fingerprint = data.fingerprint

    def steps_per_epoch(self) -> int:
        """Training steps in one epoch (batches the model draws itself); 1 for a full sweep."""
        return 1

    def register_data_buffer(self, name: str, tensor: torch.Tensor) -> None:
        """A buffer whose size depends on the data (content vectors, EASE's weights...):
        saved like any buffer, and resized to the saved size before a checkpoint loads."""
        self.register_buffer(name, tensor)
        self._data_buffers = (*self._data_buffers, name)

    def on_fit_start(self) -> None:
        if self.seen is None:
            raise RecsysError(
                f"{type(self).__name__} has no training data: fit it with "
                "datamodule=RecsysDataModule(...), or call model.prepare(data) first"
            )

    # -- to implement ---------------------------------------------------------------------
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(B, n_items)`` scores for the ``(B,)`` user indices ``users``."""
        raise NotImplementedError

    def score_folded(
        self, rows: torch.Tensor, cols: torch.Tensor, conf: torch.Tensor, n_users: int
    ) -> torch.Tensor:
        """``(n_users, n_items)`` scores for users unseen in training, from their known items:
        entry j says user ``rows[j]`` (0..n_users-1) has item ``cols[j]`` with confidence
        ``conf[j]`` (rows ascending). Models that cannot fold in users raise RecsysError."""
        raise RecsysError(
            f"model {type(self).__name__} cannot score users it was not trained on "
            "(as split=strong_generalization needs); choose a model with fold-in: als, wmf, "
            "ease, itemknn, gf_cf, bspm, multvae, multdae, sasrec or gru4rec"
        )

    def factor_tables(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(user vectors (n_users, k), item vectors (n_items, k))`` whose products are the
        model's scores (item biases aside), for factor models; None for the others."""
        return None

    # -- inference (eval mode, no gradients) ----------------------------------------------
    @inference
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, n_items)`` of training users, as used for ranking (adjusted)."""
        return self.adjust_scores(self.score(users.to(self.device)))

    @inference
    def score_history(
        self, rows: torch.Tensor, cols: torch.Tensor, conf: torch.Tensor, n_users: int
    ) -> torch.Tensor:
        """Scores ``(n_users, n_items)`` of new users from their items (``score_folded``'s
        arguments), as used for ranking (adjusted)."""
        return self.adjust_scores(self.score_folded(rows, cols, conf, n_users))

    @inference
    def score_batch(self, batch: dict) -> torch.Tensor:
        """Scores for an evaluation batch: held-out users (with ``history_*``) are folded in
        from their history, training users scored directly; adjusted as
        ``set_score_adjustment`` says."""
        if "history_rows" in batch:
            scores = self.score_folded(
                batch["history_rows"],
                batch["history_cols"],
                batch["history_conf"],
                len(batch["users"]),
            )
        else:
            scores = self.score(batch["users"])
        return self.adjust_scores(scores)

    @inference
    def recommend(
        self, users: torch.Tensor, k: int = 10, exclude_seen: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k item indices ``(B, k)`` and their scores, best first, ties by item index.

        With ``exclude_seen`` the users' training items are left out; slots with no item
        left hold index -1 and score -inf. Users are scored in blocks of at most
        ``SCORE_BLOCK`` scores; on a CPU the blocks of one call share one scores buffer
        (``scratch_scores``: a fresh 16 MiB tensor per block costs up to four times the
        matrix product in page faults, depending on the allocator's state).
        """
        users = users.to(self.device)
        block = SCORE_BLOCK if self.device.type == "cpu" else 16 * SCORE_BLOCK
        rows_per_block = max(1, block // self.n_items)
        if len(users) > rows_per_block:
            kept = self._scratch  # an evaluation pass's buffer, if any, is left as it was
            parts = []
            try:
                for b in users.split(rows_per_block):
                    self._scratch_open = True  # topk copies out: the block's scores are dead
                    parts.append(self.recommend(b, k, exclude_seen))
            finally:
                self._scratch_open, self._scratch = False, kept
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        scores = self.adjust_scores(self.score(users))
        rows = cols = np.zeros(0, dtype=np.int64)
        if exclude_seen and self.seen is not None:
            rows, cols, _ = row_entries(self.seen, users.cpu().numpy())
        if scores.device.type == "cpu" and scores.dtype == torch.float32:  # one read
            items, top, valid = topk_excluding(scores, torch.from_numpy(rows),
                                               torch.from_numpy(cols), k)  # fmt: skip
            return items, top
        scores[torch.from_numpy(rows), torch.from_numpy(cols)] = float("-inf")
        items, valid = topk(scores, k)
        top = torch.gather(scores, 1, items)
        return items.masked_fill(~valid, -1), top

    def history_confidences(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        strengths: np.ndarray,
        features: dict | None = None,
        n_users: int | None = None,
    ) -> np.ndarray:
        """Confidences of new users' histories (entries: user ``rows``, item columns ``cols``,
        raw ``strengths``, per-pair ``features`` such as ``dwell``; see
        ``Confidence.values_of_histories``) by the confidence fitted at training: what
        training users with exactly these items would have had."""
        if self.confidence is None:
            raise RecsysError("the model has no fitted confidence (it was never prepared)")
        if getattr(self, "_item_id_source", None) is not self.item_ids:  # once per id map
            self._item_id_source, self._item_id_array = self.item_ids, np.asarray(self.item_ids)
        return self.confidence.values_of_histories(
            self._item_id_array, rows, cols, strengths, features, n_users
        )

    # -- popularity adjustment (public) ---------------------------------------------------
    def set_score_adjustment(self, theta: np.ndarray | None, beta: float) -> None:
        """Inference-time popularity adjustment: every score s_ui used for ranking (in
        evaluation and ``recommend``) becomes s_ui / theta_i^beta (beta = 0 or theta None:
        off). Meant for models whose top scores are positive; it travels in the checkpoint."""
        if theta is None or beta == 0:
            self.score_divisor = None
            return
        divisor = np.asarray(theta, dtype=np.float64) ** float(beta)
        if divisor.shape != (self.n_items,) or not np.all(divisor > 0):
            raise ValueError("score adjustment needs one positive propensity per item")
        self.score_divisor = torch.from_numpy(divisor.astype(np.float32))

    def adjust_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` ``(B, n_items)`` divided by theta_i^beta (``set_score_adjustment``)."""
        if self.score_divisor is None:
            return scores
        return scores / self.score_divisor.to(scores.device)

    # -- context --------------------------------------------------------------------------
    def set_context(self, user_ids, item_ids, confidence: sp.csr_matrix) -> None:
        """The external ids, and the training items with their confidences, that travel
        with the model."""
        if confidence.shape != (self.n_users, self.n_items):
            raise ValueError(
                f"training matrix {confidence.shape} != model {(self.n_users, self.n_items)}"
            )
        self.user_ids = np.asarray(user_ids).tolist()
        self.item_ids = np.asarray(item_ids).tolist()
        self.train_confidence = sp.csr_matrix(confidence, dtype=np.float32, copy=True)
        seen = self.train_confidence.copy()
        seen.data[:] = 1.0
        self.seen = seen

    # -- evaluation -----------------------------------------------------------------------
    def _start(self) -> None:
        self._state = self.evaluator.new_state(self.n_items)

    def _step(self, batch: dict) -> None:
        self._scratch_open = True  # the step's scores may go into the reused scratch buffer
        try:
            self.evaluator.update(self._state, self.score_batch(batch), batch)
        except FloatingPointError as e:  # NaN scores: training diverged
            raise DivergenceError(
                f"training diverged by epoch {self.current_epoch}: {e}; {self.divergence_hint()}"
            ) from None
        finally:
            self._scratch_open = False

    def scratch_scores(self, n_rows: int, like: torch.Tensor) -> torch.Tensor | None:
        """A ``(n_rows, n_items)`` buffer for an evaluation step's scores, reused from step to
        step (a fresh 100+ MB tensor per batch costs more in page faults on a CPU than the
        matrix product that fills it), or None outside an evaluation step, off the CPU, for
        a dtype other than float32, or when the step has had it already: scores written
        into it live only until the evaluator has ranked them."""
        if not self._scratch_open or like.device.type != "cpu":
            return None
        if like.dtype != torch.float32:
            return None
        self._scratch_open = False
        buf = self._scratch
        if buf is None or buf.shape[0] < n_rows or buf.shape[1] != self.n_items:
            buf = self._scratch = torch.empty((n_rows, self.n_items), dtype=torch.float32)
        return buf[:n_rows]

    def divergence_hint(self) -> str:
        """The settings most likely to blame when this model's training diverges (for the
        one-line error of ``recsys.callbacks.TrainingHealth`` and NaN scores)."""
        return "lower the learning rate (model.lr) or raise model.regularization"

    def _end(self, stage: str) -> None:
        self._scratch = None  # the scores' buffer is not kept between passes
        if self.trainer.sanity_checking:
            return
        world, _ = world_and_rank()
        if world > 1:  # each process evaluated its share of the users: gather them all
            states = [None] * world
            torch.distributed.all_gather_object(states, self._state)
            self._state = EvaluationState.merged(states)
        if not self._state.users:
            return
        results = self.evaluator.compute(self._state, stage)
        self.metrics[stage] = results
        self.per_user[stage] = self._state.per_user()
        self.log_dict(results, prog_bar=False, logger=bool(self.trainer.loggers))

    def on_validation_epoch_start(self) -> None:
        self._start()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch)

    def on_validation_epoch_end(self) -> None:
        self._end("val")

    def on_test_epoch_start(self) -> None:
        self._start()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch)

    def on_test_epoch_end(self) -> None:
        self._end("test")

    def log_train(self, name: str, value: float | torch.Tensor, **kwargs) -> None:
        """``self.log`` of a training quantity once per epoch, when a Trainer runs the model
        (nothing when it is fitted from Python)."""
        if self._trainer is not None:
            self.log(name, value, on_step=False, on_epoch=True, **kwargs)

    # -- checkpoint -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        conf = self.train_confidence
        checkpoint["recsys"] = {
            "format": CHECKPOINT_FORMAT,
            "model_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "user_ids": self.user_ids,
            "item_ids": self.item_ids,
            "seen_indptr": None if conf is None else torch.from_numpy(conf.indptr.astype(np.int64)),
            "seen_indices": None
            if conf is None
            else torch.from_numpy(conf.indices.astype(np.int64)),
            "seen_confidence": None if conf is None else torch.from_numpy(conf.data),
            "confidence": None if self.confidence is None else self.confidence.state(),
            "data_fingerprint": self.data_fingerprint,
            "config": self.run_config,
            "score_divisor": self.score_divisor,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        ctx = checkpoint.get("recsys") or {}
        if ctx.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"the checkpoint has format {ctx.get('format', 1)}, this recsys reads format "
                f"{CHECKPOINT_FORMAT}: retrain the model with this version"
            )
        self._resize_data_buffers(checkpoint["state_dict"])
        self.user_ids = ctx.get("user_ids")
        self.item_ids = ctx.get("item_ids")
        self.run_config = ctx.get("config")
        self.score_divisor = ctx.get("score_divisor")
        self.data_fingerprint = ctx.get("data_fingerprint")
        state = ctx.get("confidence")
        self.confidence = None if state is None else Confidence.from_state(state)
        if ctx.get("seen_indptr") is not None:
            indptr = ctx["seen_indptr"].numpy()
            indices = ctx["seen_indices"].numpy()
            conf = ctx["seen_confidence"].numpy()
            if len(indptr) != self.n_users + 1 or len(conf) != len(indices):
                raise CheckpointError("the checkpoint's training items do not match its shape")
            self.set_context(
                self.user_ids,
                self.item_ids,
                sp.csr_matrix((conf, indices, indptr), shape=(self.n_users, self.n_items)),
            )

    def _resize_data_buffers(self, state: dict) -> None:
        """Give the data buffers (``register_data_buffer``) of this model and of the models
        inside it the sizes saved in ``state``."""
        for prefix, module in self.named_modules():
            if not isinstance(module, RecommenderModule):
                continue
            for name in module._data_buffers:
                key = f"{prefix}.{name}" if prefix else name
                if key in state:
                    old = getattr(module, name)
                    saved = state[key]
                    setattr(module, name, torch.empty(saved.shape, dtype=saved.dtype,
                                                      device=old.device))  # fmt: skip


class FactorModel(RecommenderModule):
    """A model whose scores are products of user and item vectors (plus item biases):
    score(u, i) = x_u . y_i + b_i. Subclasses provide ``user_table``, ``item_table``
    (and ``item_biases``), and, to fold in new users, ``fold_in_rows`` (their user step)."""

    def user_table(self, users: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, k)`` vectors of ``users`` (all ``(n_users, k)`` for None)."""
        raise NotImplementedError

    def item_table(self) -> torch.Tensor:
        """``(n_items, k)`` item vectors."""
        raise NotImplementedError

    def item_biases(self) -> torch.Tensor | None:
        """``(n_items,)`` item biases, or None."""
        return None

    def fold_in_rows(
        self, rows: torch.Tensor, cols: torch.Tensor, conf: torch.Tensor, n_users: int
    ) -> torch.Tensor:
        """``(n_users, k)`` vectors of new users from their items (``score_folded``'s
        arguments); models without a user step raise RecsysError."""
        return RecommenderModule.score_folded(self, rows, cols, conf, n_users)

    def factor_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_table(None), self.item_table()

    def _with_items(self, x: torch.Tensor) -> torch.Tensor:
        items = self.item_table()
        out = self.scratch_scores(len(x), x) if items.dtype == x.dtype else None
        bias = self.item_biases()
        if out is None:
            scores = x @ items.T
            return scores if bias is None else scores + bias
        torch.mm(x, items.T, out=out)
        return out if bias is None else out.add_(bias)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self._with_items(self.user_table(users))

    def score_folded(self, rows, cols, conf, n_users: int) -> torch.Tensor:
        return self._with_items(self.fold_in_rows(rows, cols, conf, n_users))


class ClosedFormModule(RecommenderModule):
    """A model fitted by explicit updates, one ``fit_epoch()`` per Lightning epoch (manual
    optimization; no gradients). ``fit(data, epochs)`` fits it without a Trainer."""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.automatic_optimization = False

    def fit_epoch(self) -> None:
        raise NotImplementedError

    def fit(self, data: TrainingData | None = None, epochs: int = 1) -> ClosedFormModule:
        """Fit on the model's current device without a Trainer: ``prepare(data)`` (unless
        ``data`` is None and the model is prepared), then ``epochs`` calls of
        ``fit_epoch``. Returns the model."""
        if epochs < 1:
            raise ConfigError(f"a model needs at least one epoch of training, got {epochs}")
        if data is not None:
            self.prepare(data)
        self.on_fit_start()
        with torch.no_grad():
            for _ in range(epochs):
                self.fit_epoch()
        return self

    def training_step(self, batch, batch_idx: int) -> None:
        self.optimizers().step(closure=self.fit_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return EpochStep(list(self.buffers()))


class OnePassModule(ClosedFormModule):
    """A model fitted in one pass over the data (popularity, item-kNN, EASE, content...):
    ``fit_epoch`` runs once and the Trainer stops after the first epoch."""

    def training_step(self, batch, batch_idx: int) -> None:
        super().training_step(batch, batch_idx)
        self.trainer.should_stop = True
