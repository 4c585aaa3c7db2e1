"""A closed-loop news site: readers come day after day, and what a block shows changes what
they read next. The world (readers' tastes and activity, articles' topics, quality, length and
publication times, the true affinity) is ``PublisherSimulator``'s; the site runs a history
period under its own block, then an A/B test in which each reader is assigned to an arm, and
each arm's block is a policy (``recsys.simulation.policies``).

What the simulator assumes (``Response``, config):

- sessions: a reader starts Poisson(``sessions_per_reader`` a_u / days) sessions a day (a_u
  the reader's activity), at uniform times; the first article of a session is the reader's
  own choice (a topic drawn from their tastes, a recent article of it: ``organic``);
- reading: an opened article is read with probability = the true affinity A, else bounced; a
  read's dwell is its length / 4 words per second x a completion share ~ Beta(1 + 4A,
  1 + 4(1 - A)), a bounce's exponential with mean 6 s (the simulator's own);
- the block (``k`` slots) is shown after every view; clicks follow a position-based model:
  slot s is examined with probability ``examine_top`` x ``position_decay``^s, independently
  of the others, and an examined article is clicked with probability ``click_scale`` x A x
  exp(-age / ``freshness_days``) (news grows stale: an article's pull in a block decays with
  its age in days; the true affinity itself does not); the reader follows the highest
  clicked slot (every click is logged);
- without a click, the reader goes on to an article of their own choosing with probability
  ``organic_after_read`` (after a read) or ``organic_after_bounce`` (after a bounce), else
  leaves; at most ``max_views`` views per session; between views, the dwell plus an
  exponential pause of 20 s.

Logs, in the publisher export format with the A/B columns (``views``, ``impressions``,
``assignment``; see ``Logs``), are what a deployed widget would record, so the A/B analysis
(``recsys.evaluation.abtest``), the off-policy estimators and every command for an export run
on them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.datasets.publisher_sim import DAY, START, PublisherSimulator
from recsys.errors import RecsysError
from recsys.files import write_atomically
from recsys.simulation.policies import Policy, Steps

log = logging.getLogger(__name__)
HISTORY_ARM = "site"


@dataclass(frozen=True)
class Response:
    """How readers respond to a block (see the module)."""

    examine_top: float = 0.7
    position_decay: float = 0.8
    click_scale: float = 0.6
    organic_after_read: float = 0.45
    organic_after_bounce: float = 0.25
    max_views: int = 20
    freshness_days: float | None = 2.0

    def __post_init__(self) -> None:
        for name in ("examine_top", "position_decay", "click_scale", "organic_after_read",
                     "organic_after_bounce"):  # fmt: skip
            if not 0 <= getattr(self, name) <= 1:
                raise RecsysError(f"response.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_views < 1:
            raise RecsysError("response.max_views must be at least 1")
        if self.freshness_days is not None and self.freshness_days <= 0:
            raise RecsysError("response.freshness_days must be > 0 (or null: no decay)")

    def attraction(self, affinity: np.ndarray, age_days: np.ndarray) -> np.ndarray:
        """Probability that an examined article is clicked (see the module)."""
        if self.freshness_days is None:
            return self.click_scale * affinity
        return self.click_scale * affinity * np.exp(-np.maximum(age_days, 0) / self.freshness_days)

    def examination(self, k: int) -> np.ndarray:
        """``(k,)`` probability that each slot is examined."""
        return self.examine_top * self.position_decay ** np.arange(k)


@dataclass
class Logs:
    """What the site recorded. ``views``: reader, article, time (ISO 8601), session,
    dwell_seconds, source (widget | organic), arm, position (slot of a widget view);
    ``impressions``: reader, session, time, arm, step, position, article, propensity,
    clicked (one row per slot of every block shown); ``assignment``: reader, arm (every
    reader of the test); ``articles``: the CMS table."""

    views: pd.DataFrame
    impressions: pd.DataFrame
    assignment: pd.DataFrame
    articles: pd.DataFrame

    def write(self, folder: str | Path) -> dict[str, Path]:
        """The four tables as CSV files in ``folder`` (written atomically); their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        for name in ("views", "impressions", "assignment", "articles"):
            frame = getattr(self, name)
            out[name] = write_atomically(
                folder / f"{name}.csv", lambda tmp, f=frame: f.to_csv(tmp, index=False)
            )
        return out


@dataclass
class _Site:
    truth: object
    published: np.ndarray  # unix seconds, ascending
    yesterday: np.ndarray  # views per article the day before
    today: np.ndarray = field(default=None)


class ClosedLoop:
    """The site of ``sim``'s world, ``history_days`` under ``history_policy`` for everyone,
    then ``test_days`` with each reader assigned to one of ``arms`` (name -> policy) with
    probabilities ``split`` (default: equal). ``sim.days`` must cover both periods (its
    articles are published over them). A policy whose ``retrain_due(day)`` is true is
    retrained at the start of that test day on the logs so far, written to ``workdir``."""

    def __init__(
        self,
        sim: PublisherSimulator,
        arms: Mapping[str, Policy],
        history_policy: Policy,
        history_days: int,
        test_days: int,
        split: Mapping[str, float] | None = None,
        k: int = 10,
        response: Response | None = None,
        seed: int = 0,
        workdir: str | Path | None = None,
    ) -> None:
        if history_days + test_days > sim.days:
            raise RecsysError(
                f"history_days + test_days = {history_days + test_days} exceeds the world's "
                f"days ({sim.days}): set the simulator's days to at least that"
            )
        if not arms:
            raise RecsysError("give at least one arm")
        self.sim, self.arms, self.history_policy = sim, dict(arms), history_policy
        self.history_days, self.test_days, self.k = int(history_days), int(test_days), int(k)
        weights = np.asarray([(split or {}).get(a, 1.0) for a in self.arms], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise RecsysError(f"split must give non-negative shares, got {split}")
        self.split = weights / weights.sum()
        self.response = response or Response()
        self.rng = np.random.default_rng([seed, 7])
        self.workdir = None if workdir is None else Path(workdir)
        truth, self.activity = sim.world()
        self.site = _Site(truth, truth.published, np.zeros(len(truth.published)))
        names = np.asarray(list(self.arms))
        self.assignment = names[self.rng.choice(len(names), sim.n_readers, p=self.split)]

    # -- running ------------------------------------------------------------------------
    def run(self, progress: Callable[[str], None] | None = None) -> Logs:
        """Simulate every day; the logs."""
        say = progress or log.info
        chunks: dict[str, list] = {"views": [], "impressions": []}
        session_count = 0
        for day in range(self.history_days + self.test_days):
            testing = day >= self.history_days
            due = [
                p for p in self.arms.values() if testing and p.retrain_due(day - self.history_days)
            ]
            if due:
                if self.workdir is None:
                    raise RecsysError("retraining blocks need a workdir for the logs so far")
                export = self._logs(chunks).write(self.workdir / "so_far")
                for policy in due:
                    policy.retrain(export, day - self.history_days)
            start = time.perf_counter()
            readers, begin = self._sessions(day)
            arm_of = self.assignment[readers] if testing else np.full(len(readers), HISTORY_ARM)
            ids = session_count + np.arange(len(readers))
            session_count += len(readers)
            self.site.today = np.zeros_like(self.site.yesterday)
            for arm in np.unique(arm_of):
                policy = self.arms[arm] if testing else self.history_policy
                members = arm_of == arm
                views, shown = self._run_sessions(
                    policy, readers[members], begin[members], ids[members]
                )
                chunks["views"].append(views.assign(arm=arm))
                chunks["impressions"].append(shown.assign(arm=arm))
            self.site.yesterday = self.site.today
            say(
                f"day {day + 1}/{self.history_days + self.test_days}"
                f"{' (test)' if testing else ''}: {len(readers):,} sessions in "
                f"{time.perf_counter() - start:.1f} s"
            )
        return self._logs(chunks)

    def _sessions(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Readers ``(S,)`` and start times ``(S,)`` (unix seconds) of one day's sessions."""
        rate = self.sim.sessions_per_reader / self.sim.days * self.activity
        counts = self.rng.poisson(rate)
        readers = np.repeat(np.arange(len(counts)), counts)
        begin = START + (day + self.rng.random(len(readers))) * DAY
        order = np.argsort(begin, kind="stable")
        return readers[order], begin[order]

    def _run_sessions(self, policy: Policy, readers, begin, ids):
        """All sessions of one arm and day, step by step; ``(views, impressions)`` frames."""
        sim, truth, resp, rng, k = self.sim, self.site.truth, self.response, self.rng, self.k
        n = len(readers)
        views = {c: [] for c in ("session", "reader", "article", "time", "dwell", "source",
                                 "position")}  # fmt: skip
        shown = {c: [] for c in ("session", "reader", "time", "step", "position", "article",
                                 "propensity", "clicked")}  # fmt: skip
        now = begin.astype(np.float64).copy()
        current = sim.organic(rng, readers, (now - START) / DAY)
        source = np.zeros(n, dtype=np.int64)  # 0 organic, 1 widget
        position = np.full(n, -1)
        read: list[list[int]] = [[] for _ in range(n)]
        alive = np.arange(n)
        examine = resp.examination(k)
        for step in range(resp.max_views):
            if not len(alive):
                break
            art = current[alive]
            was_read, dwell = sim.read_or_bounce(rng, readers[alive], art)
            for c, v in zip(("session", "reader", "article", "time", "dwell", "source",
                             "position"), (ids[alive], readers[alive], art, now[alive], dwell,
                                           source[alive], position[alive])):  # fmt: skip
                views[c].append(np.asarray(v))
            np.add.at(self.site.today, art, 1)
            for j, a in zip(alive, art):
                read[j].append(int(a))
            now[alive] += dwell + rng.exponential(20.0, len(alive))
            if step + 1 == resp.max_views:
                break
            steps = Steps(readers[alive], now[alive], [read[j] for j in alive])
            slate, prop = policy.slates(steps, k, self.site)
            valid = slate >= 0
            aff = np.where(valid, truth.affinity_pairs(readers[alive, None], np.maximum(slate, 0)),
                           0.0)  # fmt: skip
            age = (now[alive, None] - self.site.published[np.maximum(slate, 0)]) / DAY
            clicked = (
                valid
                & (rng.random(slate.shape) < examine)
                & (rng.random(slate.shape) < resp.attraction(aff, age))
            )
            rows, cols = np.nonzero(valid)
            for c, v in zip(("session", "reader", "time", "step", "position", "article",
                             "propensity", "clicked"),
                            (ids[alive][rows], readers[alive][rows], now[alive][rows],
                             np.full(len(rows), step), cols, slate[rows, cols], prop[rows, cols],
                             clicked[rows, cols].astype(np.int64))):  # fmt: skip
                shown[c].append(np.asarray(v))
            any_click = clicked.any(axis=1)
            first = np.argmax(clicked, axis=1)
            go_on = rng.random(len(alive)) < np.where(
                was_read, resp.organic_after_read, resp.organic_after_bounce
            )
            own = ~any_click & go_on
            nxt = np.full(len(alive), -1, dtype=np.int64)
            nxt[any_click] = slate[any_click, first[any_click]]
            if own.any():
                nxt[own] = sim.organic(rng, readers[alive][own], (now[alive][own] - START) / DAY)
            current[alive] = np.maximum(nxt, 0)
            source[alive] = any_click.astype(np.int64)
            position[alive] = np.where(any_click, first, -1)
            alive = alive[nxt >= 0]
        return _frame(views), _frame(shown)

    # -- output -------------------------------------------------------------------------
    def _logs(self, chunks: dict) -> Logs:
        views = _concat(chunks["views"], ("session", "reader", "article", "time", "dwell",
                                          "source", "position", "arm"))  # fmt: skip
        shown = _concat(
            chunks["impressions"],
            ("session", "reader", "time", "step", "position", "article", "propensity",
             "clicked", "arm"),
        )  # fmt: skip
        views = views.sort_values(["time", "session"], kind="stable", ignore_index=True)
        out_views = pd.DataFrame(
            {
                "reader": "r" + views["reader"].astype(str),
                "article": "a" + views["article"].astype(str),
                "time": _iso(views["time"]),
                "session": "s" + views["session"].astype(str),
                "dwell_seconds": np.round(views["dwell"].to_numpy(np.float64), 1),
                "source": np.where(views["source"].to_numpy() == 1, "widget", "organic"),
                "arm": views["arm"].to_numpy(),
                "position": views["position"].astype("Int64").where(views["position"] >= 0),
            }
        )
        out_shown = pd.DataFrame(
            {
                "reader": "r" + shown["reader"].astype(str),
                "session": "s" + shown["session"].astype(str),
                "time": _iso(shown["time"]),
                "arm": shown["arm"].to_numpy(),
                "step": shown["step"].astype(np.int64),
                "position": shown["position"].astype(np.int64),
                "article": "a" + shown["article"].astype(str),
                "propensity": shown["propensity"].astype(np.float64),
                "clicked": shown["clicked"].astype(np.int64),
            }
        )
        assignment = pd.DataFrame(
            {"reader": [f"r{u}" for u in range(self.sim.n_readers)], "arm": self.assignment}
        )
        end = START + (self.history_days + self.test_days) * DAY
        return Logs(out_views, out_shown, assignment, self.sim.articles_frame(end))


def _frame(columns: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame({c: np.concatenate(v) if v else np.zeros(0) for c, v in columns.items()})


def _concat(frames: list[pd.DataFrame], columns) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: np.zeros(0) for c in columns})
    return pd.concat(frames, ignore_index=True)


def _iso(seconds: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(np.asarray(seconds, dtype=np.float64).astype(np.int64), unit="s",
                            utc=True)  # fmt: skip
    return pd.Series(stamps.strftime("%Y-%m-%dT%H:%M:%SZ"))
