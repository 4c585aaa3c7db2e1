"""Blocks a closed-loop site can show (``recsys.simulation.loop``): each policy gives, for a
batch of steps (a reader who has just read an article), ``k`` articles and the probability
with which the policy puts each of them at its position (1 for a deterministic block).

A step's context (``Steps``): the reader (index), the time, the session's articles so far
(the current one last), and what the site knows: articles published by then, yesterday's
views. Policies never show an article published after the step, nor one already read in the
session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsys.errors import RecsysError

DAY = 86_400.0


@dataclass
class Steps:
    """A batch of ``S`` steps: ``readers`` ``(S,)`` reader indices, ``now`` ``(S,)`` unix
    seconds, ``read`` (per step, the session's article indices so far, the current last)."""

    readers: np.ndarray
    now: np.ndarray
    read: list[list[int]]


class Policy:
    """Base class: ``slates(steps, k, site) -> (articles (S, k) int, propensities (S, k))``;
    ``site`` gives ``published`` (unix seconds per article, ascending: articles are numbered
    by publication) and ``yesterday`` (views per article the day before)."""

    name = "policy"

    def slates(self, steps: Steps, k: int, site) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def retrain_due(self, day: int) -> bool:
        """Whether the policy retrains at the start of test day ``day`` (0-based)."""
        return False

    def retrain(self, export: dict, day: int) -> None:
        """Called when ``retrain_due(day)``, with the logs so far (a written export)."""


def _available(site, now: float) -> int:
    """How many articles are published by ``now`` (articles are numbered by publication)."""
    return int(np.searchsorted(site.published, now, side="right"))


def _top_unread(order: np.ndarray, read: Sequence[int], k: int) -> np.ndarray:
    """The first ``k`` of ``order`` not in ``read`` (padded with -1)."""
    seen = set(read)
    out = [i for i in order[: k + len(seen)] if i not in seen][:k]
    return np.asarray(out + [-1] * (k - len(out)), dtype=np.int64)


class MostRecent(Policy):
    """The site's "most recent articles" block: the latest ``k`` published, unread."""

    name = "most_recent"

    def slates(self, steps, k, site):
        out = np.empty((len(steps.readers), k), dtype=np.int64)
        for s, (now, read) in enumerate(zip(steps.now, steps.read)):
            n = _available(site, now)
            out[s] = _top_unread(np.arange(n - 1, -1, -1), read, k)
        return out, np.ones(out.shape)


class MostPopular(Policy):
    """The most viewed articles of the day before, unread."""

    name = "most_popular"

    def slates(self, steps, k, site):
        order = np.argsort(-site.yesterday, kind="stable")
        out = np.empty((len(steps.readers), k), dtype=np.int64)
        for s, (now, read) in enumerate(zip(steps.now, steps.read)):
            ranked = order[order < _available(site, now)]
            out[s] = _top_unread(ranked, read, k)
        return out, np.ones(out.shape)


class RandomRecent(Policy):
    """``k`` distinct articles drawn uniformly at random (in random order) among the
    ``pool`` latest published that the session has not read: each is at a given position
    with probability 1 / (pool size), the logged propensity."""

    name = "random"

    def __init__(self, pool: int = 200, seed: int = 0) -> None:
        self.pool = int(pool)
        self.rng = np.random.default_rng(seed)

    def slates(self, steps, k, site):
        out = np.full((len(steps.readers), k), -1, dtype=np.int64)
        prop = np.ones(out.shape)
        for s, (now, read) in enumerate(zip(steps.now, steps.read)):
            n = _available(site, now)
            seen = set(read)
            pool = [i for i in range(max(0, n - self.pool - len(seen)), n) if i not in seen]
            pool = pool[-self.pool :]
            chosen = self.rng.permutation(len(pool))[:k]
            out[s, : len(chosen)] = np.asarray(pool)[chosen]
            prop[s] = 1.0 / max(len(pool), 1)
        return out, prop


class Oracle(Policy):
    """The truth's top ``k``: the articles of the last ``fresh_days`` with the highest true
    click probability for the reader (affinity and, with ``response``, freshness), unread (an
    upper reference, not a deployable block)."""

    name = "oracle"

    def __init__(self, fresh_days: float = 2.0, response=None) -> None:
        self.fresh_days = float(fresh_days)
        self.response = response

    def slates(self, steps, k, site):
        out = np.empty((len(steps.readers), k), dtype=np.int64)
        for s, (reader, now, read) in enumerate(zip(steps.readers, steps.now, steps.read)):
            n = _available(site, now)
            lo = int(np.searchsorted(site.published, now - self.fresh_days * DAY))
            pool = np.arange(lo, n)
            if len(pool) < k + len(read):
                pool = np.arange(max(0, n - k - len(read) - 50), n)
            pull = site.truth.affinity_pairs(int(reader), pool)
            if self.response is not None:
                pull = self.response.attraction(pull, (now - site.published[pool]) / DAY)
            out[s] = _top_unread(pool[np.argsort(-pull, kind="stable")], read, k)
        return out, np.ones(out.shape)


class TrainedBlock(Policy):
    """A trained model's block through the serving API (``recsys.serve.Recommender``): for
    a reader the model knows, their list with the current article as context; for one it
    does not, the session so far as their history; among the articles of the last
    ``fresh_days``. ``checkpoint``: the model; ``items``: the site's whole CMS table (articles
    published after training are placed by content; none is shown before it is published);
    retrained every ``retrain_days`` days on the logs so far by ``train`` (a callable
    ``(export, day) -> checkpoint path``), if given."""

    name = "model"

    def __init__(
        self,
        checkpoint: str,
        fresh_days: float = 2.0,
        retrain_days: int | None = None,
        train=None,
        context_weight: float = 1.0,
        items: str | None = None,
    ) -> None:
        from recsys.serve import Recommender  # the serving layer, loaded once per model

        self._load = lambda path: Recommender.load(path, items=items, context_weight=context_weight)
        self.rec = self._load(checkpoint)
        self.fresh_days = float(fresh_days)
        self.retrain_days = retrain_days
        self.train = train
        if retrain_days is not None and train is None:
            raise RecsysError("a trained block retrained every N days needs a train callable")

    def retrain_due(self, day: int) -> bool:
        return bool(self.retrain_days) and day > 0 and day % self.retrain_days == 0

    def retrain(self, export: dict, day: int) -> None:
        self.rec = self._load(self.train(export, day))

    def slates(self, steps, k, site):
        rec = self.rec
        out = np.full((len(steps.readers), k), -1, dtype=np.int64)
        for s, (reader, now, read) in enumerate(zip(steps.readers, steps.now, steps.read)):
            ids = [f"a{i}" for i in read]
            known = [i for i in ids if rec.has_item(i)]
            options = {"k": k + len(read), "now": float(now), "fresh_days": self.fresh_days}
            context = known[-1] if known and known[-1] == ids[-1] else None
            user = f"r{reader}"
            if rec.has_reader(user):
                result = rec.recommend(user=user, context=context, **options)
            elif known:
                result = rec.recommend(history=known[:-1] or None, context=known[-1], **options)
            else:
                continue
            picked = [int(str(a)[1:]) for a in result["items"]]
            out[s] = _top_unread(np.asarray(picked, dtype=np.int64), read, k)
        return out, np.ones(out.shape)


POLICIES = {"most_recent": MostRecent, "most_popular": MostPopular, "random": RandomRecent,
            "oracle": Oracle, "model": TrainedBlock}  # fmt: skip
