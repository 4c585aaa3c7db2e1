"""Serving a widget in-process: a checkpoint loaded once, then top-k lists for a known reader,
a new reader from the articles read so far, or "the reader is on article X", with filters
(not already read, published within the last N days of a given ``now``, topics), over a
catalogue that may hold articles published after training (from the item table).

    rec = Recommender.load("last.ckpt", items="articles.csv")  # or the run's own item table
    rec.recommend(user="r17", k=10, now="2024-03-01T12:00", fresh_days=2)
    rec.recommend(history=["a1", "a7"], context="a7", k=10)
    rec.related("a7", k=5)

Scores. The model scores the items it was trained on, as in evaluation (its own routing:
a hybrid's content fallback for readers with few items, popularity for none). An article the
model has never seen (in the item table, never viewed before training) is scored without
retraining: a factor model (ALS, WMF, BPR, and the hybrids' collaborative part) places it in
its factor space from its content, y_new = v W with W the ridge regression of the trained
items' factors (and biases) on their content vectors, W = (V^T V + ridge I)^-1 V^T Y; a
content-scored reader (``model=content``, a hybrid's cold reader) scores it by the cosine of
its content vector to the reader's profile, as the model scores any item. Content vectors are
the model's own, new texts placed in its fitted space (``TextEncoder.transform``); for a model
without content, an encoder fitted on the item table's texts at load.

Context. With ``context`` (the article being read), the current article joins a new reader's
history, and for every reader the list leans toward it: score = z(model score) +
``context_weight`` z(cos(v_context, v_j)), z the standardization over the catalogue (mean 0,
standard deviation 1 over the finite scores) and v the content vectors (the item factors where
no text is known): with weight 1, the reader's own taste and the current article count alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from recsys.data.content import TextEncoder
from recsys.data.datasets.eventlog import ITEM_DEFAULTS
from recsys.data.interactions import row_entries
from recsys.data.items import ItemTable, read_items
from recsys.errors import RecsysError, UnknownIdError
from recsys.evaluation import topk
from recsys.models.base import FactorModel, RecommenderModule
from recsys.models.checkpoint import load_model
from recsys.models.content import ContentKNN
from recsys.models.hybrid import Hybrid, HybridALS, ridge_map
from recsys.serving import confidences_at

log = logging.getLogger(__name__)
DAY = 86_400.0


def item_table_of(model: RecommenderModule, paths: Mapping | None = None) -> ItemTable | None:
    """The item table named by the run config saved with ``model`` (``data.items``), read
    now; None when the run had none."""
    items = _item_settings(model, paths)
    if not items.get("path"):
        return None
    return read_items(
        items["path"], dict(items["columns"]), items["format"], items["published_unit"],
        items["encoding"],
    )  # fmt: skip


def _item_settings(model: RecommenderModule, paths: Mapping | None = None) -> dict:
    """The ``data.items`` settings of the run that trained ``model`` (defaults without),
    resolved (``${paths...}`` from ``paths``, environment variables from this process)."""
    stored = (model.run_config or {}).get("data") or {}
    conf = OmegaConf.create({**stored, "paths": dict(paths or {})})
    try:
        items = conf.data.get("items") if "data" in conf else None
        items = OmegaConf.to_container(items, resolve=True) if items is not None else {}
    except Exception as e:  # noqa: BLE001 - an interpolation the stored config cannot resolve
        raise RecsysError(f"the run's item table setting cannot be resolved here: {e}") from None
    return {**ITEM_DEFAULTS, **dict(items or {})}


def parse_time(now) -> float:
    """Unix seconds of ``now``: a number (seconds), an ISO 8601 string or a datetime."""
    if now is None:
        raise RecsysError("fresh_days needs now=<the time to count back from>")
    if isinstance(now, int | float):
        return float(now)
    try:
        stamp = pd.Timestamp(now)
    except (ValueError, TypeError):
        raise RecsysError(f"now={now!r} is neither unix seconds nor an ISO 8601 time") from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.timestamp()


@dataclass
class Request:
    """One list to make (see ``Recommender.recommend``)."""

    user: object = None
    history: Sequence | None = None
    context: object = None
    k: int = 10
    now: object = None
    fresh_days: float | None = None
    topics: Sequence[str] | None = None
    exclude_topics: Sequence[str] | None = None
    exclude_read: bool = True
    strengths: Sequence[float] | None = None
    features: Mapping[str, Sequence] | None = None
    confidences: Sequence[float] | None = None


class Recommender:
    """A trained model and its catalogue, for serving (see the module).

    Args:
        model: a trained ``RecommenderModule`` (``load_model``), in eval mode.
        items: the item table (publication times, topics, texts; new articles); None: the
            model's items only, without times or topics.
        context_weight: weight of the similarity to the current article (``context``).
        ridge: ridge of the content-to-factor map of new articles.
        request_threads: torch threads for one list (``recommend``, ``related``); a single
            list is too small to split, and on a busy machine threads waiting for each other
            cost more than the work (a 16 x 16 Cholesky: 3 us on one thread, 16 ms on two
            under load). Batches (``recommend_users``) use the process's setting.
    """

    def __init__(
        self,
        model: RecommenderModule,
        items: ItemTable | None = None,
        context_weight: float = 1.0,
        ridge: float = 1.0,
        request_threads: int | None = 1,
    ) -> None:
        if model.item_ids is None:
            raise RecsysError("the model has no item ids: load it from a checkpoint")
        self.model = model
        self.context_weight = float(context_weight)
        self.request_threads = request_threads
        known = np.asarray(model.item_ids)
        self.n_known = len(known)
        new = _new_ids(known, items)
        self.item_ids = np.concatenate([known.astype(object), new.astype(object)])
        self._index = {str(i): j for j, i in enumerate(self.item_ids)}
        readers = [] if model.user_ids is None else model.user_ids
        self._readers = {str(u): r for r, u in enumerate(readers)}
        self.published = _column(items, "published", self.item_ids, -np.inf, np.float64)
        self.topics = _column(items, "topic", self.item_ids, "", object)
        self.vectors = self._content_vectors(items)
        self.factors = _factor_source(model)
        self.mapped_factors = self._map_new_items(ridge)
        if len(new) and self.mapped_factors is None and not self._scores_content():
            log.warning(
                "%d articles of the item table are new to %s, which can score them neither "
                "from factors nor from content: they are left out until it is retrained",
                len(new), type(model).__name__,
            )  # fmt: skip

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        ckpt_path: str | Path,
        items: str | Path | ItemTable | Mapping | None = None,
        trusted_packages: Sequence[str] = (),
        paths: Mapping | None = None,
        **kwargs,
    ) -> Recommender:
        """Load a checkpoint once. ``items``: an item table (a file with the run's column
        names, a mapping of ``data.items`` settings, or an ``ItemTable``); None: the run's own
        item table, if it had one (``paths``: the ``paths`` config its settings may name)."""
        model = load_model(ckpt_path, trusted_packages=list(trusted_packages))
        if items is None:
            table = item_table_of(model, paths)
        elif isinstance(items, ItemTable):
            table = items
        else:
            settings = _item_settings(model, paths)
            settings.update(dict(items) if isinstance(items, Mapping) else {"path": str(items)})
            table = read_items(
                settings["path"], dict(settings["columns"]), settings["format"],
                settings["published_unit"], settings["encoding"],
            )  # fmt: skip
        return cls(model, table, **kwargs)

    def _content_vectors(self, items: ItemTable | None) -> torch.Tensor | None:
        """``(n_catalogue, d)`` content vectors: the model's own (new texts placed in its
        space), else fitted on the table's texts; None without any text."""
        model = self.model
        encoder = getattr(model, "content_encoder", None)
        texts = None if items is None else items.text()
        texts = [texts.get(i, texts.get(str(i), "")) for i in self.item_ids] if texts else None
        if encoder is not None and getattr(model, "item_vectors", None) is not None:
            own = model.item_vectors.detach().cpu().float()
            if len(self.item_ids) == self.n_known:
                return own
            if texts is None:
                raise RecsysError("new articles need their text in the item table")
            new = torch.from_numpy(encoder.transform(texts[self.n_known :]))
            return torch.cat([own, new])
        if texts is None:
            return None
        return torch.from_numpy(TextEncoder("tfidf_svd", 64).fit(texts))

    def _map_new_items(self, ridge: float) -> torch.Tensor | None:
        """``(len(self.mapped), k + 1)`` factors and biases of the articles a factor model
        has no trained factors for (``self.mapped``: the catalogue's new articles, and, for a
        model that does not place them itself, its articles without a training interaction),
        from their content by the ridge map over the trained articles; None when the model
        has no factors or no content is known, or nothing needs placing."""
        trained = np.zeros(self.n_known, dtype=bool)
        if self.model.seen is not None:
            trained[np.unique(self.model.seen.indices)] = True
        untrained = np.flatnonzero(~trained)
        if isinstance(self.model, HybridALS | Hybrid):  # they place their own untrained items
            untrained = untrained[:0]
        self.mapped = np.concatenate([untrained, np.arange(self.n_known, len(self.item_ids))])
        if self.factors is None or self.vectors is None or not len(self.mapped):
            return None
        y = self.factors.item_table().detach().cpu().double()
        bias = self.factors.item_biases()
        b = torch.zeros(len(y), dtype=torch.float64) if bias is None else bias.detach().cpu()
        target = torch.cat([y, b.double().reshape(-1, 1)], dim=1)
        warm = torch.from_numpy(np.flatnonzero(trained))
        mapped = torch.from_numpy(self.mapped)
        vectors = torch.cat([self.vectors[warm], self.vectors[mapped]])
        new = torch.zeros(len(vectors), dtype=torch.bool)
        new[len(warm) :] = True
        padding = torch.zeros(len(mapped), target.shape[1], dtype=torch.float64)
        return ridge_map(vectors, new, torch.cat([target[warm], padding]), ridge).float()

    def _scores_content(self) -> bool:
        return isinstance(self.model, ContentKNN | HybridALS | Hybrid) and self.vectors is not None

    # -- ids ------------------------------------------------------------------------------
    def item_index(self, items: Sequence) -> np.ndarray:
        """Catalogue positions of item ids (also by their string form); UnknownIdError for
        ids in neither the model nor the item table."""
        found = [self._index.get(str(i)) for i in items]
        unknown = [i for i, j in zip(items, found) if j is None]
        if unknown:
            raise UnknownIdError(
                f"unknown item id(s) {', '.join(map(repr, unknown[:10]))}: neither the model "
                f"nor the item table has them ({len(self.item_ids):,} articles known)"
            )
        return np.asarray(found, dtype=np.int64)

    def has_reader(self, user) -> bool:
        """Whether the model was trained on reader ``user`` (also by its string form)."""
        return str(user) in self._readers

    def has_item(self, item) -> bool:
        """Whether ``item`` is in the catalogue (the model's or the item table's)."""
        return str(item) in self._index

    def reader_index(self, users: Sequence) -> np.ndarray:
        """Row indices of known readers' ids (also by their string form); UnknownIdError
        naming the unknown ones, and what to give for a new reader."""
        found = [self._readers.get(str(u)) for u in users]
        unknown = [u for u, r in zip(users, found) if r is None]
        if unknown:
            raise UnknownIdError(
                f"unknown user id(s) {', '.join(map(repr, unknown[:10]))}: the model was "
                f"trained on {len(self._readers):,} readers; for a new reader, give the "
                "articles read so far instead: history=[...] (or context=<article>)"
            )
        return np.asarray(found, dtype=np.int64)

    # -- lists ----------------------------------------------------------------------------
    def recommend(self, user=None, history: Sequence | None = None, **options) -> dict:
        with torch_threads(self.request_threads):
            return self._recommend(user, history, **options)

    def _recommend(self, user=None, history: Sequence | None = None, **options) -> dict:
        """Top-k for one reader: ``user`` (a known reader's id) or ``history`` (the articles a
        new reader has read, oldest first; may be empty with a ``context``), and options:
        ``context`` (the article being read), ``k``, ``now`` (unix seconds or ISO 8601) and
        ``fresh_days`` (only articles published within that many days before ``now``),
        ``topics`` / ``exclude_topics`` (include / exclude lists), ``exclude_read`` (default
        true: not the reader's training articles, history or context), ``strengths`` and
        ``features`` of the history (e.g. ``{"dwell": [...]}``; weighted by the confidence
        fitted at training) or its ``confidences``. Returns ``{"user" or
        "history", "items": [...], "scores": [...]}``, best first."""
        request = Request(user=user, history=history, **options)
        if user is not None and history is not None:
            raise RecsysError("give either user=<a known reader> or history=[...] (a new reader)")
        if user is None and history is None and request.context is None:
            raise RecsysError(
                "give user=<a known reader>, or history=[...] and/or context=<article> (a new "
                "reader)"
            )
        if user is not None:
            scores, read = self._known_scores(np.asarray([user], dtype=object))
        else:
            scores, read = self._new_scores(request)
        items, values = self._finish(scores, read, request)
        key = {"user": user} if user is not None else {"history": list(history or [])}
        return {**key, "items": items[0], "scores": values[0]}

    def recommend_users(self, users: Sequence, batch_size: int = 1024, **options) -> list[dict]:
        """``recommend`` for many known readers (an export), scored in batches."""
        request = Request(**options)
        out = []
        for start in range(0, len(users), batch_size):
            chunk = np.asarray(list(users[start : start + batch_size]), dtype=object)
            scores, read = self._known_scores(chunk)
            items, values = self._finish(scores, read, request)
            out += [{"user": u, "items": i, "scores": v}
                    for u, i, v in zip(chunk.tolist(), items, values)]  # fmt: skip
        return out

    def related(self, item, k: int = 10, **filters) -> dict:
        with torch_threads(self.request_threads):
            return self._related(item, k, **filters)

    def _related(self, item, k: int = 10, **filters) -> dict:
        """The ``k`` articles most similar to ``item`` (content cosine; item factors where no
        text is known), itself left out; ``filters`` as ``recommend``'s (now, fresh_days,
        topics, exclude_topics)."""
        j = int(self.item_index([item])[0])
        sim = self._similarity(j).reshape(1, -1)
        read = (np.zeros(1, dtype=np.int64), np.asarray([j]))
        items, values = self._finish(sim, read, Request(k=k, **filters), standardize=False)
        return {"item": item, "items": items[0], "scores": values[0]}

    # -- scoring --------------------------------------------------------------------------
    def _known_scores(self, users: np.ndarray) -> tuple[torch.Tensor, tuple]:
        """``(B, n_catalogue)`` scores of known readers and their training articles."""
        idx = torch.from_numpy(self.reader_index(users))
        scores = self._extended(self.model.score_users(idx).cpu(), idx, None)
        read = ((np.zeros(0, np.int64), np.zeros(0, np.int64)) if self.model.seen is None
                else row_entries(self.model.seen, idx.numpy())[:2])  # fmt: skip
        return scores, read

    def _new_scores(self, request: Request) -> tuple[torch.Tensor, tuple]:
        """``(1, n_catalogue)`` scores of a new reader from history (+ context), folded in
        in time order: the history oldest first, the current article last."""
        history = list(request.history or [])
        items = history + ([] if request.context is None else [request.context])
        if not items:
            raise RecsysError("a new reader needs history=[...] or context=<article>")
        cat = self.item_index(items)
        read = (np.zeros(len(cat), dtype=np.int64), cat)
        cols, conf = self._history_entries(request, history, cat[: len(history)])
        if request.context is not None and cat[-1] < self.n_known:  # the current one last
            if cat[-1] in cols:
                at = cols == cat[-1]
                cols, conf = np.append(cols[~at], cols[at]), np.append(conf[~at], conf[at])
            else:
                unknown = {name: [None] for name in _features_used(self.model)}
                _, one = confidences_at(self.model, cat[-1:], None, unknown)  # one view
                cols, conf = np.append(cols, cat[-1]), np.append(conf, one)
        if not len(cols):  # only articles new to the model: content, or nothing it knows
            known, fold = torch.zeros(1, self.n_known), None
        else:
            rows = torch.zeros(len(cols), dtype=torch.int64)
            conf_t = torch.from_numpy(np.asarray(conf, dtype=np.float32))
            fold = (rows, torch.from_numpy(cols.astype(np.int64)), conf_t)
            known = self.model.score_history(*fold, 1).cpu()
        return self._extended(known, None, fold, content_items=cat), read

    def _history_entries(self, request: Request, history: list, cat: np.ndarray):
        """``(cols, confidences)`` of the history's articles the model knows: from the given
        ``confidences`` (one per distinct article), else by the confidence fitted at training
        from ``strengths`` and ``features`` (``recsys.serving.confidences_at``)."""
        trained = np.flatnonzero(cat < self.n_known)
        if request.confidences is not None:
            given = np.asarray(request.confidences, dtype=np.float32)
            if len(given) != len(history):
                raise RecsysError(f"{len(history)} articles but {len(given)} confidences")
            if len(np.unique(cat)) != len(cat):
                raise RecsysError("an article is given twice: give each once with its confidence")
            return cat[trained], given[trained]  # in the history's (time) order
        if not len(trained):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)

        def pick(values):
            return None if values is None else [values[i] for i in trained]

        for name, values in {"strengths": request.strengths, **(request.features or {})}.items():
            if values is not None and len(values) != len(history):
                raise RecsysError(f"{len(history)} articles but {len(values)} values of {name}")
        features = {name: [None] * len(trained) for name in _features_used(self.model)}
        features.update({k: pick(v) for k, v in (request.features or {}).items()})
        return confidences_at(self.model, cat[trained], pick(request.strengths), features)

    def _extended(self, known: torch.Tensor, users, fold, content_items=None) -> torch.Tensor:
        """``(B, n_catalogue)`` scores: the model's ``known`` ``(B, n_known)``, with the
        articles it has no factors for placed by their content (``self.mapped``), the new
        ones scored by content for readers the model scores by content (see the module);
        -inf for new articles the model can score neither way."""
        n_new = len(self.item_ids) - self.n_known
        out = known  # a tensor of this call's own: filled in place
        if n_new:
            out = torch.cat([known, torch.full((len(known), n_new), float("-inf"))], dim=1)
        if self.mapped_factors is not None:
            if users is not None:
                x = self.factors.user_table(users.to(self.factors.device)).detach().cpu()
            elif fold is not None and hasattr(self.factors, "fold_in_rows"):
                with torch.no_grad():
                    x = self.factors.fold_in_rows(*[t.to(self.factors.device) for t in fold], 1)
                x = x.detach().cpu()
            else:
                x = None
            if x is not None:
                y, bias = self.mapped_factors[:, :-1], self.mapped_factors[:, -1]
                out[:, torch.from_numpy(self.mapped)] = x.float() @ y.T + bias
        if n_new == 0:
            return out
        content = self._content_rows(users, fold, content_items)
        if content is not None:
            mask, profile = content
            out[mask, self.n_known :] = profile @ self.vectors[self.n_known :].T
        if users is not None and isinstance(self.model, HybridALS | Hybrid):
            empty = self.model.history[users.to(self.model.device)].cpu() == 0
            out[empty, self.n_known :] = 0.0  # the hybrid ranks these by popularity: none yet
        return out

    def _content_rows(self, users, fold, content_items):
        """``(mask (B,), profiles (n_masked, d))`` of the readers the model scores by
        content (see the module), or None."""
        if not self._scores_content():
            return None
        model = self.model
        vectors = self.vectors
        if users is not None:
            n_min = getattr(model.hparams, "n_min", None)
            history = np.diff(model.seen.indptr)[users.numpy()] if model.seen is not None else 0
            mask = (np.ones(len(users), bool) if n_min is None
                    else (history < n_min) & (history > 0))  # fmt: skip
            if not mask.any():
                return None
            starts = model.profile_indptr[users].cpu().numpy()
            ends = model.profile_indptr[users + 1].cpu().numpy()
            items = model.profile_items.cpu().numpy()
            profiles = torch.stack([vectors[items[s:e]].sum(0) for s, e in
                                    zip(starts[mask], ends[mask])])  # fmt: skip
            return torch.from_numpy(mask), profiles
        n_min = getattr(model.hparams, "n_min", None)
        distinct = np.unique(content_items)
        n_trained = int((distinct < self.n_known).sum())
        if n_min is not None and n_trained >= n_min:
            return None
        return torch.ones(1, dtype=torch.bool), vectors[distinct].sum(0, keepdim=True)

    def _similarity(self, j: int) -> torch.Tensor:
        """``(1, n_catalogue)`` cosine of every article to article ``j``."""
        if self.vectors is not None:
            v = self.vectors
        elif self.factors is not None:  # no text: new articles are like nothing known
            y = self.factors.item_table().detach().cpu().float()
            v = torch.cat([y, torch.zeros(len(self.item_ids) - self.n_known, y.shape[1])])
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
        else:
            raise RecsysError(
                "related articles and context need item texts (an item table) or item factors"
            )
        return (v @ v[j]).reshape(1, -1)

    def _finish(self, scores, read, request: Request, standardize: bool = True):
        """Filters, context and top-k: ``(items, scores)`` lists per row."""
        scores = torch.as_tensor(scores, dtype=torch.float32)  # this call's own: changed in place
        if request.context is not None and standardize:
            scores = _standardized(scores)
            j = int(self.item_index([request.context])[0])
            similarity = _standardized(torch.as_tensor(self._similarity(j), dtype=torch.float32))
            scores += self.context_weight * similarity
        allowed = self._allowed(request)
        if allowed is not None:
            scores[:, ~torch.from_numpy(allowed)] = float("-inf")
        if request.exclude_read:
            rows, cols = read
            scores[torch.as_tensor(rows), torch.as_tensor(cols)] = float("-inf")
            if request.context is not None:
                scores[:, int(self.item_index([request.context])[0])] = float("-inf")
        if request.k < 1:
            raise RecsysError(f"k must be >= 1, got {request.k}")
        top, valid = topk(scores, request.k)
        picked = torch.gather(scores, 1, top).tolist()
        items, values = [], []
        for row, ok, score in zip(top.tolist(), valid.tolist(), picked):
            keep = [j for j, v in enumerate(ok) if v]
            items.append([_plain(self.item_ids[row[j]]) for j in keep])
            values.append([score[j] for j in keep])
        return items, values

    def _allowed(self, request: Request) -> np.ndarray | None:
        """``(n_catalogue,)`` bool: articles that pass the freshness and topic filters."""
        allowed = np.ones(len(self.item_ids), dtype=bool)
        if request.fresh_days is not None:
            if self.published is None:
                raise RecsysError(
                    "fresh_days needs publication times: an item table with a published column"
                )
            now = parse_time(request.now)
            allowed &= (self.published <= now) & (self.published >= now - request.fresh_days * DAY)
        elif request.now is not None and self.published is not None:
            allowed &= self.published <= parse_time(request.now)  # not yet published
        for wanted, keep in ((request.topics, True), (request.exclude_topics, False)):
            if wanted:
                if self.topics is None:
                    raise RecsysError("topic filters need an item table with a topic column")
                inside = np.isin(self.topics.astype(str), [str(t) for t in wanted])
                allowed &= inside if keep else ~inside
        return None if allowed.all() else allowed


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (None: unchanged), restored after."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _features_used(model: RecommenderModule) -> tuple[str, ...]:
    """Per-pair features the model's confidence reads (unknown, NaN, where not given)."""
    return tuple(getattr(model.confidence, "features_used", ()) or ())


def _standardized(scores: torch.Tensor) -> torch.Tensor:
    """Each row's finite scores minus their mean over their standard deviation."""
    finite = torch.isfinite(scores)
    x = torch.where(finite, scores, torch.zeros_like(scores))
    n = finite.sum(1, keepdim=True).clamp_min(1)
    mean = x.sum(1, keepdim=True) / n
    var = (torch.where(finite, scores - mean, torch.zeros_like(scores)) ** 2).sum(1, keepdim=True)
    std = (var / n).sqrt().clamp_min(1e-12)
    return torch.where(finite, (scores - mean) / std, scores)


def _new_ids(known: np.ndarray, items: ItemTable | None) -> np.ndarray:
    """Ids of the table's items the model does not know (compared by their string form)."""
    if items is None:
        return np.zeros(0, dtype=object)
    have = {str(i) for i in known}
    return np.asarray([i for i in items.ids if str(i) not in have], dtype=object)


def _column(items: ItemTable | None, role: str, ids: np.ndarray, fill, dtype):
    if items is None or role not in items.frame:
        return None
    return np.asarray(items.column_for(role, ids, fill), dtype=dtype)


def _factor_source(model: RecommenderModule) -> FactorModel | None:
    """The factor model whose tables score new articles: the model, or a hybrid's
    collaborative model; None for others."""
    if isinstance(model, FactorModel):
        return model
    inner = getattr(model, "cf", None)
    return inner if isinstance(inner, FactorModel) else None


def _plain(value):
    """A numpy scalar as a plain Python value (for JSON)."""
    return value.item() if hasattr(value, "item") else value


__all__ = ["Recommender", "item_table_of", "parse_time"]
