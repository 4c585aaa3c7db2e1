"""A seeded simulator of a publisher's reading logs: readers, articles, a site widget that
decides much of what gets seen, and a dwell time per view (``data=publisher_sim``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.events import EventReport, EventRules, events_to_interactions
from recsys.data.interactions import Interactions
from recsys.files import write_atomically

POLICIES = ("most_recent", "most_popular", "random")
SECTIONS = ("politics", "business", "sport", "culture", "science", "health", "travel", "food",
            "technology", "education", "climate", "cities", "world", "opinion", "media", "music",
            "film", "books", "style", "motoring")  # fmt: skip
DAY = 86_400
START = 1_577_836_800  # 2020-01-01 00:00 UTC


@dataclass(frozen=True)
class PublisherTruth:
    """What the simulator knows and a log does not. Readers are rows, articles columns.

    ``tastes`` ``(n_readers, n_topics)`` (rows sum to 1), ``topics`` ``(n_articles,
    n_topics)`` (rows sum to 1), ``quality`` ``(n_articles,)``; ``affinity(readers)`` gives
    the probability ``(len(readers), n_articles)`` that a reader who opens an article reads it
    rather than bounces."""

    tastes: np.ndarray
    topics: np.ndarray
    quality: np.ndarray
    length_words: np.ndarray
    published: np.ndarray
    taste_weight: float
    quality_weight: float
    offset: float

    def affinity(self, readers: np.ndarray | None = None) -> np.ndarray:
        tastes = self.tastes if readers is None else self.tastes[readers]
        return self._from_match(tastes @ self.topics.T, self.quality)

    def affinity_pairs(self, readers: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Affinity of (reader, article) pairs, broadcasting ``readers`` against ``items``."""
        readers, items = np.broadcast_arrays(readers, items)
        match = np.einsum("...k,...k->...", self.tastes[readers], self.topics[items])
        return self._from_match(match, self.quality[items])

    def _from_match(self, match: np.ndarray, quality: np.ndarray) -> np.ndarray:
        """sigmoid(taste_weight log(n_topics theta . phi) + quality_weight q + offset); the
        scaled match is 1 for an average reader and article."""
        scaled = match * self.topics.shape[1]
        z = self.taste_weight * np.log(scaled + 1e-3) + self.quality_weight * quality
        return 1.0 / (1.0 + np.exp(-(z + self.offset)))


class PublisherSimulator:
    """Article views of a news site over ``days`` days, with ground truth.

    Generative model (readers are rows):
      - reader u: topic tastes ``theta_u ~ Dirichlet(taste_concentration)`` over ``n_topics``,
        activity ``a_u`` log-normal (mean 1): sessions ~ Poisson(``sessions_per_reader`` a_u);
      - article i: topic mix ``phi_i ~ Dirichlet(0.1)``, quality ``q_i ~ N(0, 1)``, length
        ``L_i`` log-normal (median ``median_words``), published uniformly over the period
        (``initial_articles`` of them before it starts);
      - affinity (the chance that u reads i once opened, the ground truth):
        ``sigmoid(taste_weight log(n_topics theta_u . phi_i) + quality_weight q_i + offset)``;
      - a session starts at a uniform time; each view comes with probability ``widget_share``
        from the site's widget, else from the reader's own path (a topic drawn from theta_u,
        then one of that topic's recent articles, recency ~ exponential with mean
        ``organic_recency_days``). The widget shows ``widget_size`` articles by its
        ``policy``: ``most_recent`` (the latest published), ``most_popular`` (most viewed the
        day before) or ``random`` (among the last ``random_pool`` published); the reader opens
        slot s with probability ~ ``position_decay``^s * affinity;
      - an opened article is read with probability = affinity, else it is a bounce: a read's
        dwell is ``L_i / words_per_second`` times a completion fraction ~ Beta(1 + 4 A, 1 + 4
        (1 - A)) (A the affinity); a bounce's is exponential with mean ``bounce_mean_seconds``;
      - after a view the session goes on with probability ``continue_after_read`` or
        ``continue_after_bounce`` (at most ``max_views_per_session`` views).

    ``load()`` aggregates the events into interactions by ``rules`` (``recsys.data.events``:
    ``strength: count`` raw view counts, ``dwell`` total seconds, ...); ``events()`` gives the
    event log (columns of the generic ``events`` format plus ``source``: widget or organic),
    ``truth`` the ground truth, ``write_events(path)`` the log as CSV or Parquet.
    """

    name = "publisher_sim"

    def __init__(
        self,
        n_readers: int = 5000,
        n_articles: int = 2000,
        n_topics: int = 20,
        days: int = 60,
        initial_articles: int = 200,
        sessions_per_reader: float = 8.0,
        taste_concentration: float = 0.3,
        taste_weight: float = 1.2,
        quality_weight: float = 0.5,
        offset: float = -0.5,
        policy: str = "most_recent",
        widget_size: int = 10,
        widget_share: float = 0.6,
        position_decay: float = 0.85,
        random_pool: int = 200,
        organic_recency_days: float = 5.0,
        median_words: float = 600.0,
        words_per_second: float = 4.0,
        bounce_mean_seconds: float = 6.0,
        continue_after_read: float = 0.6,
        continue_after_bounce: float = 0.35,
        max_views_per_session: int = 20,
        rules: dict | None = None,
        seed: int = 0,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"publisher_sim policy must be one of {POLICIES}, got {policy!r}")
        if n_readers < 1 or n_articles < widget_size or not 0 < initial_articles <= n_articles:
            raise ValueError(
                "publisher_sim needs n_readers >= 1, n_articles >= widget_size and "
                "0 < initial_articles <= n_articles"
            )
        shares = {"widget_share": widget_share, "continue_after_read": continue_after_read,
                  "continue_after_bounce": continue_after_bounce}  # fmt: skip
        for name, p in shares.items():
            if not 0 <= p <= 1:
                raise ValueError(f"publisher_sim {name} must be in [0, 1], got {p}")
        self.__dict__.update(
            {k: v for k, v in locals().items() if k not in ("self", "shares", "name", "p")}
        )
        self.rules = EventRules(**dict(rules or {}))
        self.report: EventReport | None = None
        self._events: pd.DataFrame | None = None
        self._truth: PublisherTruth | None = None

    # -- public ---------------------------------------------------------------------------
    def load(self) -> Interactions:
        """Interactions by ``rules``; each pair also has the feature ``item_length`` (its
        article's length in words, as an item table's ``length`` gives it)."""
        lengths = {"length": pd.Series(self.truth.length_words)}
        data, self.report = events_to_interactions(
            self.events(), self.rules, self.name, item_values=lengths
        )
        return data

    def events(self) -> pd.DataFrame:
        """The event log: ``user``, ``item``, ``timestamp`` (unix seconds), ``session``,
        ``dwell`` (seconds), ``source`` (``widget`` or ``organic``), ``row``; time-ordered."""
        if self._events is None:
            self._simulate()
        return self._events

    @property
    def truth(self) -> PublisherTruth:
        if self._truth is None:
            self._simulate()
        return self._truth

    def item_published(self, item_ids) -> np.ndarray:
        """Publication times (unix seconds) of the articles ``item_ids``."""
        return self.truth.published[np.asarray(item_ids, dtype=np.int64)]

    def item_text(self, words: int = 40, vocabulary: int = 60) -> dict[int, str]:
        """Article id -> ``words`` words drawn from its topic mix, each topic with its own
        ``vocabulary`` words (Zipf-like), as a text encoder would see an article."""
        rng = np.random.default_rng([self.seed, 1])
        topics = self.truth.topics
        ranks = np.arange(1, vocabulary + 1)
        zipf = (1.0 / ranks) / (1.0 / ranks).sum()
        out = {}
        for i in range(self.n_articles):
            t = rng.choice(self.n_topics, size=words, p=topics[i])
            w = rng.choice(vocabulary, size=words, p=zipf)
            out[i] = " ".join(f"t{a}w{b}" for a, b in zip(t, w))
        return out

    def write_events(self, path: str | Path) -> Path:
        """The event log as CSV or Parquet (by the suffix), readable by ``data=events``."""
        path = Path(path)
        frame = self.events().drop(columns=["row"])
        if path.suffix.lower() == ".parquet":
            return write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))
        return write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))

    def write_export(self, folder: str | Path, until_day: float | None = None) -> dict:
        """A publisher-style export in ``folder``, as an agency receives one: ``views.csv``
        (``reader``, ``article``, ``time`` ISO 8601 UTC, ``session``, ``dwell_seconds``,
        ``source``: widget or organic) and ``articles.csv``, the CMS table (``article``,
        ``title``, ``body``, ``section``, ``published`` ISO 8601, ``words``): readers ``r<n>``,
        articles ``a<n>``, sections named after each article's main topic. ``until_day``:
        only the views before that day of the log, and only the articles published by then
        (the CMS as it was), e.g. to serve later articles to a model trained on this.
        Returns ``{"views": path, "articles": path, "views_written": n, "articles_written":
        m}``; files are written atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        ev = self.events()
        cutoff = np.inf if until_day is None else START + float(until_day) * DAY
        ev = ev[ev["timestamp"] < cutoff]
        iso = pd.to_datetime(ev["timestamp"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        views = pd.DataFrame(
            {
                "reader": "r" + ev["user"].astype(str),
                "article": "a" + ev["item"].astype(str),
                "time": iso,
                "session": "s" + ev["session"].astype(str),
                "dwell_seconds": ev["dwell"],
                "source": ev["source"],
            }
        )
        articles = self.articles_frame(cutoff)
        paths = {}
        for name, frame in (("views", views), ("articles", articles)):
            paths[name] = write_atomically(
                folder / f"{name}.csv", lambda tmp, f=frame: f.to_csv(tmp, index=False)
            )
        return {**paths, "views_written": len(views), "articles_written": len(articles)}

    # -- simulation -----------------------------------------------------------------------
    def world(self) -> tuple[PublisherTruth, np.ndarray]:
        """``(truth, activity)``: the readers and articles alone, without simulating any view
        (the same as the log's: the same draws), for a closed-loop simulation
        (``recsys.simulation``); ``activity`` ``(n_readers,)`` scales each reader's sessions
        (mean 1)."""
        truth, activity, _ = self._world(np.random.default_rng(self.seed))
        if self._truth is None:
            self._truth = truth
        return truth, activity

    def articles_frame(self, until: float = np.inf) -> pd.DataFrame:
        """The CMS table of ``write_export`` (``article``, ``title``, ``body``, ``section``,
        ``published`` ISO 8601, ``words``) of the articles published before unix time
        ``until``."""
        truth = self.world()[0] if self._truth is None else self._truth  # no views needed
        shown = np.flatnonzero(truth.published < until)
        text = self.item_text()
        published = pd.to_datetime(truth.published[shown], unit="s", utc=True)
        return pd.DataFrame(
            {
                "article": [f"a{i}" for i in shown],
                "title": [" ".join(text[i].split()[:6]) for i in shown],
                "body": [text[i] for i in shown],
                "section": [SECTIONS[t % len(SECTIONS)] + ("" if t < len(SECTIONS) else str(t))
                            for t in truth.topics[shown].argmax(1)],
                "published": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "words": np.round(truth.length_words[shown]).astype(np.int64),
            }
        )  # fmt: skip

    def organic(self, rng: np.random.Generator, readers: np.ndarray, now: np.ndarray):
        """``(len(readers),)`` articles the ``readers`` open on their own at ``now`` (days
        since the log's start), as in the log (see the class)."""
        truth = self._truth if self._truth is not None else self.world()[0]
        if getattr(self, "_topic_index", None) is None:
            main_topic = truth.topics.argmax(1)
            by_topic = np.argsort(main_topic, kind="stable")
            topic_start = np.searchsorted(main_topic[by_topic], np.arange(self.n_topics + 1))
            self._topic_index = (by_topic, topic_start)
        published = (truth.published - START) / DAY
        return self._organic(rng, readers, now, published, *self._topic_index)

    def read_or_bounce(self, rng: np.random.Generator, readers: np.ndarray, articles: np.ndarray):
        """``(read, dwell seconds)`` of ``readers`` opening ``articles`` (see the class): read
        with probability = the true affinity A, for the article's reading time times a
        completion share ~ Beta(1 + 4A, 1 + 4(1 - A)); else a bounce, exponential with mean
        ``bounce_mean_seconds``."""
        truth = self._truth
        aff = truth.affinity_pairs(readers, articles)
        read = rng.random(len(articles)) < aff
        completion = rng.beta(1 + 4 * aff, 1 + 4 * (1 - aff))
        seconds = np.where(
            read,
            truth.length_words[articles] / self.words_per_second * completion,
            rng.exponential(self.bounce_mean_seconds, len(articles)),
        )
        return read, seconds

    def _world(self, rng: np.random.Generator) -> tuple[PublisherTruth, np.ndarray, np.ndarray]:
        """``(truth, activity, published)``, ``published`` in days since the start."""
        m, n, k = self.n_readers, self.n_articles, self.n_topics
        tastes = rng.dirichlet(np.full(k, self.taste_concentration), m)
        topics = rng.dirichlet(np.full(k, 0.1), n)
        quality = rng.standard_normal(n)
        length = rng.lognormal(np.log(self.median_words), 0.5, n)
        published = np.sort(
            np.concatenate(
                [
                    rng.uniform(-7, 0, self.initial_articles),
                    rng.uniform(0, self.days, n - self.initial_articles),
                ]
            )
        )  # days since the start; articles are numbered by publication
        truth = PublisherTruth(
            tastes, topics, quality, length, START + published * DAY,
            self.taste_weight, self.quality_weight, self.offset,
        )  # fmt: skip
        return truth, rng.lognormal(-0.5, 1.0, m), published  # activity: mean 1

    def _simulate(self) -> None:
        rng = np.random.default_rng(self.seed)
        m, n, k = self.n_readers, self.n_articles, self.n_topics
        self._truth, activity, published = self._world(rng)
        topics = self._truth.topics
        n_sessions = rng.poisson(self.sessions_per_reader * activity)
        reader = np.repeat(np.arange(m), n_sessions)
        start = np.sort(rng.uniform(0, self.days, len(reader)))  # days
        reader = reader[rng.permutation(len(reader))]  # readers at random over time
        main_topic = topics.argmax(1)
        by_topic = np.argsort(main_topic, kind="stable")  # within a topic: by publication
        topic_start = np.searchsorted(main_topic[by_topic], np.arange(k + 1))
        views = np.zeros(n, dtype=np.int64)
        out = []
        days_of = np.floor(start).astype(np.int64)
        for day in range(self.days):
            s = np.flatnonzero(days_of == day)
            if len(s):
                out.append(self._day(rng, s, reader[s], start[s], published, by_topic,
                                     topic_start, views))  # fmt: skip
                views += np.bincount(out[-1][1], minlength=n)
        session, item, time, dwell, widget = (np.concatenate(c) for c in zip(*out))
        order = np.lexsort((time, session))
        frame = pd.DataFrame(
            {
                "user": reader[session[order]],
                "item": item[order],
                "timestamp": (START + time[order] * DAY).astype(np.int64),
                "session": session[order],
                "dwell": np.round(dwell[order], 1),
                "source": np.where(widget[order], "widget", "organic"),
            }
        )
        frame = frame.sort_values(["timestamp", "session"], kind="stable", ignore_index=True)
        frame["row"] = np.arange(1, len(frame) + 1)
        self._events = frame

    def _day(self, rng, sessions, readers, start, published, by_topic, topic_start, views):
        """All views of the sessions starting on one day, step by step over the sessions."""
        truth = self._truth
        widget_pool = self._widget(rng, start, published, views)  # (S, widget_size)
        alive = np.ones(len(sessions), dtype=bool)
        now = start.copy()
        cols = [], [], [], [], []
        for _ in range(self.max_views_per_session):
            idx = np.flatnonzero(alive)
            if not len(idx):
                break
            u = readers[idx]
            from_widget = rng.random(len(idx)) < self.widget_share
            chosen = np.empty(len(idx), dtype=np.int64)
            w = np.flatnonzero(from_widget)
            if len(w):  # slot s with probability ~ decay^s * affinity
                slate = widget_pool[idx[w]]
                aff = truth.affinity_pairs(u[w, None], slate)
                logits = np.log(aff) + np.arange(slate.shape[1]) * np.log(self.position_decay)
                pick = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
                chosen[w] = slate[np.arange(len(w)), pick]
            o = np.flatnonzero(~from_widget)
            if len(o):
                chosen[o] = self._organic(rng, u[o], now[idx[o]], published, by_topic,
                                          topic_start)  # fmt: skip
            read, seconds = self.read_or_bounce(rng, u, chosen)
            for c, v in zip(cols, (sessions[idx], chosen, now[idx], seconds, from_widget)):
                c.append(v)
            now[idx] += (seconds + rng.exponential(20.0, len(idx))) / DAY
            go_on = rng.random(len(idx)) < np.where(
                read, self.continue_after_read, self.continue_after_bounce
            )
            alive[idx[~go_on]] = False
        return tuple(np.concatenate(c) for c in cols)

    def _widget(self, rng, start, published, views) -> np.ndarray:
        """``(S, widget_size)`` articles the widget shows to sessions starting at ``start``."""
        size = self.widget_size
        available = np.maximum(np.searchsorted(published, start, side="right"), size)
        if self.policy == "most_recent":
            return available[:, None] - 1 - np.arange(size)[None, :]
        if self.policy == "most_popular":  # yesterday's counts, among what was published
            top = np.argsort(-views, kind="stable")
            ranked = top[top < available.min()]
            return np.broadcast_to(ranked[:size], (len(start), size)).copy()
        low = np.maximum(available - self.random_pool, 0)
        span = available - low
        picks = low[:, None] + np.floor(rng.random((len(start), 4 * size)) * span[:, None])
        return np.stack([_first_distinct(p.astype(np.int64), size) for p in picks])

    def _organic(self, rng, readers, now, published, by_topic, topic_start) -> np.ndarray:
        """A topic from each reader's tastes, then one of its articles published before
        ``now``, ``organic_recency_days`` back on average (any latest article when the topic
        has none yet)."""
        cum = np.cumsum(self._truth.tastes[readers], axis=1)
        topic = (cum < rng.random((len(readers), 1)) * cum[:, -1:]).sum(1)
        topic = np.minimum(topic, self.n_topics - 1)
        # (topic, publication day) keys, sorted as by_topic is: count within a topic by search
        span = self.days + 16.0
        keys = np.repeat(np.arange(self.n_topics), np.diff(topic_start)) * span
        keys = keys + published[by_topic] + 8.0
        base = topic * span + 8.0
        lo = topic_start[topic]
        avail = np.searchsorted(keys, base + now, side="right") - lo
        back = rng.exponential(self.organic_recency_days, len(readers))
        pos = np.searchsorted(keys, base + now - back) - lo
        pos = np.clip(np.minimum(pos, avail - 1), 0, None)
        chosen = by_topic[np.minimum(lo + pos, len(by_topic) - 1)]
        latest = np.maximum(np.searchsorted(published, now, side="right") - 1, 0)
        return np.where(avail > 0, chosen, latest)


def _first_distinct(values: np.ndarray, size: int) -> np.ndarray:
    _, first = np.unique(values, return_index=True)
    keep = values[np.sort(first)][:size]
    if len(keep) < size:  # a tiny pool: pad with the latest
        keep = np.concatenate([keep, np.full(size - len(keep), values.max())])
    return keep
