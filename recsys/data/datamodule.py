"""The LightningDataModule: load -> filter -> split (cached) -> confidence, and the
evaluation batches."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import hydra
import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from recsys.data import cache
from recsys.data.confidence import Confidence
from recsys.data.content import has_text, texts_for
from recsys.data.events import EventReport
from recsys.data.filters import NoFilter
from recsys.data.interactions import Interactions, row_entries
from recsys.data.item_times import publication_times
from recsys.data.propensity import NoPropensity, Propensity
from recsys.data.splits import PredefinedSplit, Split, complete_candidates
from recsys.data.summary import format_summary, summarize
from recsys.data.training_data import TrainingData, split_fingerprint
from recsys.distributed import world_and_rank
from recsys.errors import ConfigError, EmptyDataError, RecsysError

log = logging.getLogger(__name__)


class EvalBatches(Dataset):
    """Batches of evaluation users, each a dict of tensors (users are rows):

    - ``users``: ``(B,)`` user indices;
    - ``exclude_rows``, ``exclude_cols``: positions (row within the batch, item) to exclude
      from ranking (training items, and validation items when testing);
    - ``truth_rows``, ``truth_cols``: positions of held-out relevant items;
    - with ``history`` (held-out users, strong generalization): ``history_rows``,
      ``history_cols``, ``history_conf``, the users' known items and their confidences, for
      the model to fold in (they are excluded from ranking too);
    - with ``candidates``: ``candidate_rows``, ``candidate_cols``, the only items ranked.

    Only users with at least one held-out item are included.
    """

    def __init__(
        self,
        truth: sp.csr_matrix,
        exclude: sp.csr_matrix,
        batch_size: int,
        history: sp.csr_matrix | None = None,
        candidates: sp.csr_matrix | None = None,
    ) -> None:
        self.truth = truth
        self.candidates = candidates
        self.exclude = exclude if history is None else (exclude + history).tocsr()
        self.history = history
        self.users = np.flatnonzero(np.diff(truth.indptr) > 0)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return (len(self.users) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        users = self.users[i * self.batch_size : (i + 1) * self.batch_size]
        out = {"users": torch.from_numpy(users)}
        parts = [("exclude", self.exclude), ("truth", self.truth)]
        if self.history is not None:
            parts.append(("history", self.history))
        if self.candidates is not None:
            parts.append(("candidate", self.candidates))
        for name, m in parts:
            rows, cols, values = row_entries(m, users)
            out[f"{name}_rows"] = torch.from_numpy(rows)
            out[f"{name}_cols"] = torch.from_numpy(cols)
            if name == "history":
                out["history_conf"] = torch.from_numpy(values.astype(np.float32))
        return out


class _Steps(Dataset):
    """``n`` placeholder items: the model samples or sweeps its own training data, and says
    how many steps an epoch has (``steps_per_epoch()``; 1 for a full sweep)."""

    def __init__(self, n: int = 1) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.zeros(1)


class RecsysDataModule(L.LightningDataModule):
    """Loads a dataset, filters and splits it, and fits confidences and propensities, once;
    the result for models is ``training_data`` (a ``TrainingData``), which this module hands
    to the model (``model.prepare(data)``) when a Trainer starts fitting.

    Args:
        dataset: an object with ``load() -> Interactions`` (``data/`` config group); with
            ``split=predefined`` it must also have ``load_parts()``; optionally
            ``item_text()``, ``item_published(item_ids)``, ``load_candidates(user_ids,
            item_ids)`` (the test candidates, or None: they become the split's
            ``test_candidates``, completed by ``splits.complete_candidates``) and
            ``relevance`` (a ``recsys.data.events.Relevance``: which validation and test
            pairs are the truth that evaluation looks for; the others are no hits and stay
            rankable).
        split: a callable ``(Interactions, seed) -> Split`` (``split/`` group).
        confidence: a ``Confidence``, fitted on training (``confidence/`` group).
        filter: a callable ``Interactions -> Interactions`` applied before splitting.
        propensity: a ``Propensity``, fitted on training (``propensity/`` group); None: no
            propensity model (``TrainingData.propensity`` None, bias metrics use theta = 1).
        eval_batch_size: users per evaluation batch.
        seed: seeds the split.
        cache_path: where the processed split is cached (None: no cache).
    """

    def __init__(
        self,
        dataset,
        split,
        confidence: Confidence,
        filter=None,  # noqa: A002 - the config group's name
        propensity: Propensity | None = None,
        eval_batch_size: int = 1024,
        seed: int = 42,
        cache_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        if eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size must be at least 1, got {eval_batch_size}")
        self.dataset = dataset
        self.splitter = split
        self.confidence = confidence
        self.propensity = None if isinstance(propensity, NoPropensity) else propensity
        self.filter = filter or NoFilter()
        self.eval_batch_size = int(eval_batch_size)
        self.seed = seed
        self.cache_path = None if cache_path is None else Path(cache_path)
        self.split: Split | None = None
        self.summary: dict[str, float] | None = None
        self.training_data: TrainingData | None = None
        self.fold_in_confidence: sp.csr_matrix | None = None
        self.cache_hit = False
        self.truth: dict[str, Interactions] = {}  # the relevant part of val and test

    @classmethod
    def from_config(cls, cfg: DictConfig) -> RecsysDataModule:
        """The DataModule of a run config (groups ``data``, ``filter``, ``split``,
        ``confidence``, ``propensity``; ``seed``, ``eval_batch_size``, ``data_cache``,
        ``paths.cache_dir``), set up. With ``data_cache`` the processed split is cached under
        ``paths.cache_dir``, keyed by the data, filter and split config, the seed and the
        source files' sizes and times."""
        dataset = hydra.utils.instantiate(cfg.data)
        cache_path = None
        if cfg.get("data_cache", True) and cfg.get("paths") and cfg.paths.get("cache_dir"):
            keyed = {
                k: OmegaConf.to_container(cfg[k], resolve=True) if k in cfg else None
                for k in ("data", "filter", "split")
            }
            keyed["seed"] = cfg.seed
            sources = dataset.source_files() if hasattr(dataset, "source_files") else []
            key = cache.cache_key(keyed, sources)
            cache_path = Path(cfg.paths.cache_dir) / f"{getattr(dataset, 'name', 'data')}-{key}.npz"
        optional = {g: hydra.utils.instantiate(cfg[g]) if cfg.get(g) else None
                    for g in ("filter", "propensity")}  # fmt: skip
        dm = cls(
            dataset=dataset,
            split=hydra.utils.instantiate(cfg.split),
            confidence=hydra.utils.instantiate(cfg.confidence),
            eval_batch_size=cfg.get("eval_batch_size", 1024),
            seed=cfg.seed,
            cache_path=cache_path,
            **optional,
        )
        dm.setup("fit")
        return dm

    # -- preparation ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Prepare the data once; when a Trainer starts fitting a model, hand it the
        ``training_data`` (``model.prepare``)."""
        if self.split is None:
            self._prepare()
        module = self.trainer.lightning_module if self.trainer is not None else None
        if stage == "fit" and module is not None:
            module.prepare(self.training_data)

    def _prepare(self) -> None:
        start = time.perf_counter()
        cached = cache.load(self.cache_path) if self.cache_path else None
        if cached is not None:
            self.split, self.summary, notes = cached
            self.cache_hit = True
            log.info("data from cache %s", self.cache_path)
            if notes.get("report"):  # what reading the log dropped: shown on every run
                EventReport.from_dict(notes["report"]).log(notes.get("source", "data"))
        else:
            self.split, data = self._build()
            self.summary = summarize(data)
            if self.cache_path:
                cache.save_or_warn(self.cache_path, self.split, self.summary, self._notes())
        log.info("data ready in %.2f s", time.perf_counter() - start)
        train = self.split.train
        self.training_data = TrainingData.from_interactions(
            train,
            self.confidence,
            propensity=None if self.propensity is None else self.propensity.fit(train).theta,
            item_text=texts_for(self.dataset, train.item_ids) if has_text(self.dataset) else None,
            item_published=_publication_times(self.dataset, self.split),
            fingerprint=split_fingerprint(self.split),
        )
        if self.split.fold_in is not None:
            self.fold_in_confidence = self.confidence.matrix(self.split.fold_in)
        self.truth = self._relevant_parts()
        log.info("data summary:\n%s", self.summary_text())
        self._log_eval_users()

    def _relevance(self):
        relevance = getattr(self.dataset, "relevance", None)
        return relevance if getattr(relevance, "active", False) else None

    def _relevant_parts(self) -> dict[str, Interactions]:
        """The validation and test pairs evaluation looks for: all of them, or those the
        dataset's ``relevance`` keeps (counted in the log). Applied on every run, after the
        cache: the cached split keeps every pair."""
        s = self.split
        relevance = self._relevance()
        if relevance is None:
            return {"val": s.val, "test": s.test}
        relevance.check([s.train, s.val, s.test])
        truth = {"val": s.val.subset(relevance.mask(s.val))}
        truth["test"] = s.test.subset(relevance.mask(s.test))
        users = int((np.diff(truth["test"].matrix.indptr) > 0).sum())
        log.info(
            "relevance (%s): %d of %d test pairs kept (%d users), %d of %d validation pairs; "
            "the others are no hits and stay rankable", relevance.describe(),
            truth["test"].nnz, s.test.nnz, users, truth["val"].nnz, s.val.nnz,
        )  # fmt: skip
        if truth["test"].nnz == 0:
            raise EmptyDataError(
                f"no test pair is relevant ({relevance.describe()}; {s.test.nnz} test pairs): "
                "change data.relevance or the split"
            )
        return truth

    def _notes(self) -> dict:
        """What the cache keeps beside the split: the dataset's drop report, if it has one."""
        report = getattr(self.dataset, "report", None)
        if not isinstance(report, EventReport):
            return {}
        source = getattr(self.dataset, "source", None) or getattr(self.dataset, "path", None)
        source = str(source or getattr(self.dataset, "name", "data"))
        return {"report": dataclasses.asdict(report), "source": source}

    def _build(self) -> tuple[Split, Interactions]:
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        if isinstance(self.splitter, PredefinedSplit):
            if not hasattr(self.dataset, "load_parts"):
                self.splitter(None, self.seed)  # raises the explanation
            if not isinstance(self.filter, NoFilter):
                raise RecsysError("filter must be 'none' with split=predefined")
            split = self.splitter.from_parts(self.dataset.load_parts(), self.seed)
            data = self.dataset.load()
        else:
            if getattr(self.dataset, "given_parts", False):
                log.warning(
                    "the log gives its own test part (data.test_path or data.split_column), "
                    "and split=%s ignores it: every event is split alike; use split=predefined "
                    "to test on that part", getattr(self.splitter, "name", "?"),
                )  # fmt: skip
            data = self.filter(self.dataset.load())
            if data.nnz == 0:
                raise EmptyDataError(f"dataset {name} is empty")
            split = self.splitter(data, self.seed)
        log.info("loaded %s: %r", name, data)
        return self._with_candidates(split), data

    def _with_candidates(self, split: Split) -> Split:
        """``split`` with the dataset's test candidates (``load_candidates``), if it has
        some, every held-out test item among them (``splits.complete_candidates``)."""
        load = getattr(self.dataset, "load_candidates", None)
        given = None if load is None else load(split.train.user_ids, split.train.item_ids)
        if given is not None:
            split = dataclasses.replace(split, test_candidates=given)
        if split.test_candidates is None:
            return split
        source = str(getattr(self.dataset, "candidates_path", None) or "the dataset")
        seen = (split.train.matrix + split.val.matrix).tocsr()
        done = complete_candidates(split.test_candidates, split.test, source, seen)
        return dataclasses.replace(split, test_candidates=done)

    def summary_text(self) -> str:
        s = self.split
        parts = {"train": s.train.nnz, "validation": s.val.nnz, "test": s.test.nnz}
        if self._relevance() is not None and self.truth:
            parts["relevant validation"] = self.truth["val"].nnz
            parts["relevant test"] = self.truth["test"].nnz
        if s.fold_in is not None:
            parts["fold-in (held-out users)"] = s.fold_in.nnz
        return format_summary(self.summary, parts)

    def _log_eval_users(self) -> None:
        for stage_name, part in (
            ("validation", self.held_out("val")),
            ("test", self.held_out("test")),
        ):
            n_eval = int((np.diff(part.matrix.indptr) > 0).sum())
            log.info(
                "%s: %d users evaluated, %d users skipped (no %s items)",
                stage_name,
                n_eval,
                self.n_users - n_eval,
                stage_name,
            )

    # -- shapes and ids -------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.split.train.n_users

    @property
    def n_items(self) -> int:
        return self.split.train.n_items

    @property
    def user_ids(self) -> np.ndarray:
        return self.split.train.user_ids

    @property
    def item_ids(self) -> np.ndarray:
        return self.split.train.item_ids

    @property
    def fingerprint(self) -> dict[str, dict]:
        return self.training_data.fingerprint

    def held_out(self, part: str) -> Interactions:
        """The ``val`` or ``test`` pairs evaluation looks for: the split's part, or its
        relevant pairs (the dataset's ``relevance``)."""
        return self.truth[part] if part in self.truth else getattr(self.split, part)

    @property
    def has_validation(self) -> bool:
        return self.held_out("val").nnz > 0

    # -- loaders --------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        steps = self.trainer.lightning_module.steps_per_epoch()
        world, _ = world_and_rank()  # several processes: each takes its share of the steps
        return DataLoader(_Steps(max(1, math.ceil(steps / world))), batch_size=None)

    def _eval_loader(
        self, truth: sp.csr_matrix, exclude: sp.csr_matrix, candidates=None
    ) -> DataLoader:
        batches = EvalBatches(
            truth, exclude, self.eval_batch_size, self.fold_in_confidence, candidates
        )
        world, rank = world_and_rank()  # several processes: users dealt out by rank
        if world > 1:
            batches.users = batches.users[rank::world]
        return DataLoader(batches, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.held_out("val").matrix, self.split.train.matrix)

    def test_dataloader(self) -> DataLoader:
        exclude = (self.split.train.matrix + self.split.val.matrix).tocsr()
        exclude.sort_indices()
        cand = self.split.test_candidates
        return self._eval_loader(
            self.held_out("test").matrix, exclude, None if cand is None else cand.matrix
        )


def _publication_times(dataset, split: Split) -> np.ndarray | None:
    """``publication_times`` where the data has them (or timestamps), else None."""
    try:
        return publication_times(dataset, split)
    except RecsysError:
        return None
