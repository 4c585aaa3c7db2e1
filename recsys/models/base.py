"""The shared interface of every model: scoring, top-k, evaluation hooks, checkpoint context."""

from __future__ import annotations

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch

from recsys.data.interactions import row_entries
from recsys.distributed import world_and_rank
from recsys.errors import RecsysError
from recsys.evaluation import Evaluator, topk
from recsys.evaluation.evaluator import EvaluationState

SCORE_BLOCK = 1 << 22  # scores per block of users in recommend (16 MiB of float32)


class RecommenderModule(L.LightningModule):
    """Base class of all models (users are rows, items are columns).

    Subclasses implement ``score(users) -> (B, n_items)`` and their training. This class
    runs full-ranking validation and test with ``self.evaluator``, and stores in each
    checkpoint what inference needs without the dataset: the external user and item ids and
    each user's training items (``seen``), plus the run's config.
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.evaluator = Evaluator()
        self.user_ids: list | None = None
        self.item_ids: list | None = None
        self.seen: sp.csr_matrix | None = None
        self.run_config: dict | None = None
        self.score_divisor: torch.Tensor | None = None  # theta_i^beta, see set_score_adjustment
        self.metrics: dict[str, dict[str, float]] = {}
        self.per_user: dict[str, dict[str, np.ndarray]] = {}
        self._state: EvaluationState | None = None

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
            "(as split=strong_generalization needs); choose a model with fold-in: als, ease "
            "or itemknn"
        )

    def factor_tables(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(user vectors (n_users, k), item vectors (n_items, k))`` whose products are the
        model's scores (item biases aside), for factor models; None for the others."""
        return None

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
        return self._adjust(scores)

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

    def _adjust(self, scores: torch.Tensor) -> torch.Tensor:
        if self.score_divisor is None:
            return scores
        return scores / self.score_divisor.to(scores.device)

    # -- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def recommend(
        self, users: torch.Tensor, k: int = 10, exclude_seen: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k item indices ``(B, k)`` and their scores, best first, ties by item index.

        With ``exclude_seen`` the users' training items are left out; slots with no item
        left hold index -1 and score -inf. Users are scored in blocks of at most
        ``SCORE_BLOCK`` scores (on a CPU, a block that the allocator reuses instead of
        mapping fresh pages for each is several times faster).
        """
        users = users.to(self.device)
        block = SCORE_BLOCK if self.device.type == "cpu" else 16 * SCORE_BLOCK
        rows_per_block = max(1, block // self.n_items)
        if len(users) > rows_per_block:
            parts = [self.recommend(b, k, exclude_seen) for b in users.split(rows_per_block)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        scores = self._adjust(self.score(users))
        if exclude_seen and self.seen is not None:
            rows, cols, _ = row_entries(self.seen, users.cpu().numpy())
            scores[torch.from_numpy(rows), torch.from_numpy(cols)] = float("-inf")
        items, valid = topk(scores, k)
        top = torch.gather(scores, 1, items)
        return items.masked_fill(~valid, -1), top

    def set_context(self, user_ids, item_ids, seen: sp.csr_matrix) -> None:
        """The external ids and training items (binary: 1 per pair) that travel with the
        model."""
        if seen.shape != (self.n_users, self.n_items):
            raise ValueError(f"seen matrix {seen.shape} != model {(self.n_users, self.n_items)}")
        self.user_ids = np.asarray(user_ids).tolist()
        self.item_ids = np.asarray(item_ids).tolist()
        seen = sp.csr_matrix(seen, dtype=np.float32, copy=True)
        seen.data[:] = 1.0
        self.seen = seen

    def on_fit_start(self) -> None:
        dm = self.trainer.datamodule
        self.set_context(dm.user_ids, dm.item_ids, dm.split.train.matrix)

    # -- evaluation -----------------------------------------------------------------------
    def _start(self) -> None:
        self._state = self.evaluator.new_state(self.n_items)
        dm = getattr(self.trainer, "datamodule", None)
        if self.evaluator.needs_item_statistics and dm is not None:
            self.evaluator.set_item_statistics(dm.item_popularity, dm.n_users, dm.propensity.theta)
        if getattr(self.evaluator, "history_edges", None) and dm is not None:
            self.evaluator.set_user_history(np.diff(dm.split.train.matrix.indptr))

    def _step(self, batch: dict) -> None:
        with torch.no_grad():
            self.evaluator.update(self._state, self.score_batch(batch), batch)

    def _end(self, stage: str) -> None:
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

    # -- checkpoint -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        seen = self.seen
        checkpoint["recsys"] = {
            "model_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "user_ids": self.user_ids,
            "item_ids": self.item_ids,
            "seen_indptr": None if seen is None else torch.from_numpy(seen.indptr.astype(np.int64)),
            "seen_indices": None
            if seen is None
            else torch.from_numpy(seen.indices.astype(np.int64)),
            "config": self.run_config,
            "score_divisor": self.score_divisor,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        ctx = checkpoint.get("recsys", {})
        self.user_ids = ctx.get("user_ids")
        self.item_ids = ctx.get("item_ids")
        self.run_config = ctx.get("config")
        self.score_divisor = ctx.get("score_divisor")
        if ctx.get("seen_indptr") is not None:
            indptr = ctx["seen_indptr"].numpy()
            indices = ctx["seen_indices"].numpy()
            data = np.ones(len(indices), dtype=np.float32)
            self.seen = sp.csr_matrix((data, indices, indptr), shape=(self.n_users, self.n_items))


class EpochStep(torch.optim.Optimizer):
    """A stand-in optimizer whose ``step(closure)`` just runs the closure.

    Closed-form models (ALS, popularity) compute their update themselves; running it as an
    optimizer step lets Lightning count it as one global step, which its checkpointing and
    logging rely on.
    """

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        super().__init__(tensors, {})

    @torch.no_grad()
    def step(self, closure=None):
        return closure() if closure is not None else None


class ClosedFormModule(RecommenderModule):
    """A model fitted by explicit updates, one ``fit_epoch()`` per Lightning epoch (manual
    optimization; no gradients)."""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.automatic_optimization = False

    def fit_epoch(self) -> None:
        raise NotImplementedError

    def training_step(self, batch, batch_idx: int) -> None:
        self.optimizers().step(closure=self.fit_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return EpochStep(list(self.buffers()))
