"""Session replay: a recommendation block judged on the sessions of a log's test period.

For each session (views in time order; a repeated article counts at its first view) and each
view but the last, the block is the top-k a scorer gives for the session so far (and the
reader's training items where ``with_history``), among the articles published by then and
not already in that context; it *hits* when it holds the article the reader viewed next.

Estimates of session length under a block rest on these assumptions, stated with every
result:
  A1. the article a reader viewed next is the one they wanted next;
  A2. a block that shows it is followed to it; a block that does not show it still leaves
      the reader a way to it with probability ``rho`` (search, the front page, other links);
  A3. a reader who left in the log leaves under any block (nothing beyond a logged session's
      end is credited), and a reader who lost the wanted article leaves.
So after view j a session goes on with probability pi_j = h_j + (1 - h_j) rho (h_j the hit),
its expected length is 1 + sum_t prod_{j<=t} pi_j, and it is a single-article session with
probability 1 - pi_0 (1 when the log has one view). With rho = 1 every block gets the log's
own numbers; the estimates compare blocks and are no forecast of absolute engagement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys.data.events import inferred_dwell, sort_into_sessions
from recsys.evaluation.ranking import topk


@dataclass
class Sessions:
    """Sessions of a log's replay period; session s holds views ``offsets[s]:offsets[s+1]``.

    ``user`` ``(S,)`` row index of each session's reader (-1: not a training user);
    ``items`` ``(V,)`` column index of each view's article (-1: unknown to the model);
    ``times`` ``(V,)`` unix seconds of each view; ``dwell`` ``(V,)`` seconds of each view
    (the log's, or the time to the session's next view; NaN: unknown)."""

    user: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    times: np.ndarray
    dwell: np.ndarray | None = None

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass
class Contexts:
    """What a block is chosen from at a batch of ``n`` replay steps, as entries sorted by
    (row, col), row r being step r of the batch: the session's views so far and, with the
    reader's history, their training items (an item can appear as both).

    ``users`` ``(n,)`` reader of each step (row index, -1: not a training user);
    ``rows``, ``cols`` the entries; ``training`` bool, the entry is a training item of the
    reader; ``dwell`` seconds of a session view that ended before the step (NaN for the
    current view, whose dwell is not known yet, for training items, and where unknown);
    ``position`` the entry's place in time: a session view's index in its session (the
    current view last), -1 for a training item (None: no order known)."""

    n: int
    users: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    training: np.ndarray
    dwell: np.ndarray
    position: np.ndarray | None = None

    def distinct(
        self, values: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The entries without repeats, as int64 tensors ``(rows, cols)``, and with
        ``values`` ``(n_entries,)`` the largest value of each (row, col) as a float32 tensor.
        Rows ascending; within a row, in time order where ``position`` is known (the
        reader's training items first, in column order, then the session's views as viewed,
        an item at its latest place), which sequential models read; else by column."""
        first = np.r_[True, (self.rows[1:] != self.rows[:-1]) | (self.cols[1:] != self.cols[:-1])]
        starts = np.flatnonzero(first)
        order = np.arange(len(starts))
        if self.position is not None and len(starts):
            latest = np.maximum.reduceat(np.asarray(self.position), starts)
            order = np.lexsort((self.cols[starts], latest, self.rows[starts]))
        rows = torch.from_numpy(self.rows[starts][order].astype(np.int64))
        cols = torch.from_numpy(self.cols[starts][order])
        if values is None:
            return rows, cols, None
        best = np.maximum.reduceat(np.asarray(values), starts) if len(starts) else values[:0]
        return rows, cols, torch.from_numpy(np.asarray(best, dtype=np.float32)[order])


Scorer = Callable[[Contexts], torch.Tensor]


def replay_sessions(
    events: pd.DataFrame, start: float, user_ids, item_ids, session_gap: float = 1800.0
) -> Sessions:
    """The sessions of ``events`` (columns ``user``, ``item``, ``timestamp``, optional
    ``session``) from time ``start`` on, ids mapped to the model's rows and columns. Sessions
    come from the ``session`` column, or else from ``session_gap`` seconds of inactivity;
    within one, only an article's first view is kept."""
    ev, new = sort_into_sessions(events.loc[events["timestamp"] >= start], session_gap)
    user = ev["user"].to_numpy()
    t = ev["timestamp"].to_numpy(dtype=np.float64)
    dwell = (
        ev["dwell"].to_numpy(dtype=np.float64)
        if "dwell" in ev
        else inferred_dwell(ev["timestamp"].to_numpy(), new)
    )
    sid = np.cumsum(new) - 1
    items = pd.Index(item_ids).get_indexer(ev["item"].to_numpy())
    raw_item = ev["item"].to_numpy()
    first = ~pd.DataFrame({"s": sid, "i": raw_item}).duplicated().to_numpy()
    sid, items, t, dwell = sid[first], items[first], t[first], dwell[first]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) if len(sid) else np.zeros(0, int)
    offsets = np.r_[starts, len(sid)].astype(np.int64)
    users = pd.Index(user_ids).get_indexer(user[first][starts]) if len(sid) else starts
    return Sessions(np.asarray(users, np.int64), offsets, items.astype(np.int64), t, dwell)


def block_hits(
    scorer: Scorer,
    sessions: Sessions,
    published: np.ndarray,
    k: int,
    seen: sp.csr_matrix | None = None,
    batch_size: int = 1024,
    fresh_seconds: float | None = None,
) -> np.ndarray:
    """``(n_steps,)`` bool: for every view but each session's last, in session order, whether
    the block (top-k of ``scorer(contexts)``, ``Contexts`` of the session so far plus, with
    ``seen``, the reader's training items) holds the next article. Excluded from the
    block: the context's items and items with ``published`` ``(n_items,)`` after the view
    (or, with ``fresh_seconds``, more than that long before it)."""
    session_of, view = steps(sessions)
    out = np.zeros(len(view), dtype=bool)
    pub = torch.from_numpy(np.asarray(published, np.float64))
    for lo in range(0, len(view), batch_size):
        v, s = view[lo : lo + batch_size], session_of[lo : lo + batch_size]
        ctx = _contexts(sessions, v, s, seen)
        rows_t, cols_t = torch.from_numpy(ctx.rows), torch.from_numpy(ctx.cols)
        scores = scorer(ctx).float().cpu()
        scores[rows_t, cols_t] = float("-inf")
        now = torch.from_numpy(sessions.times[v])[:, None]
        out_of_pool = pub[None, :] > now
        if fresh_seconds is not None:
            out_of_pool |= pub[None, :] < now - fresh_seconds
        scores[out_of_pool] = float("-inf")
        top, valid = topk(scores, k)
        target = torch.from_numpy(sessions.items[v + 1])
        out[lo : lo + len(v)] = ((top == target[:, None]) & valid).any(1).numpy()
    return out


def pool_sizes(
    sessions: Sessions, published: np.ndarray, fresh_seconds: float | None = None
) -> np.ndarray:
    """``(n_steps,)`` the number of articles a block may choose from at each step (published
    by the view, within ``fresh_seconds`` before it if given), context aside."""
    _, view = steps(sessions)
    pub = np.sort(np.asarray(published, np.float64))
    now = sessions.times[view]
    latest = np.searchsorted(pub, now, side="right")
    if fresh_seconds is None:
        return latest
    return latest - np.searchsorted(pub, now - fresh_seconds, side="left")


def steps(sessions: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """The replay's steps, in session order: each step's session and the view the block is
    shown beside (every view but its session's last; the next view is the target)."""
    lengths = sessions.lengths
    session_of = np.repeat(np.arange(len(lengths)), np.maximum(lengths - 1, 0))
    first = np.repeat(sessions.offsets[:-1], np.maximum(lengths - 1, 0))
    return session_of, first + _within(lengths - 1)


def _within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    counts = np.maximum(counts, 0)
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def _contexts(sessions: Sessions, views: np.ndarray, session_of: np.ndarray, seen) -> Contexts:
    """The ``Contexts`` of the steps at ``views`` (of sessions ``session_of``): the
    session's views up to ``views`` and, with ``seen``, the reader's training items; views of
    articles unknown to the model are left out."""
    starts = sessions.offsets[session_of]
    n_ctx = views - starts + 1
    rows = np.repeat(np.arange(len(views)), n_ctx)
    at = np.repeat(starts, n_ctx) + _within(n_ctx)
    cols = sessions.items[at]
    position = _within(n_ctx)
    dwell = np.full(len(at), np.nan) if sessions.dwell is None else sessions.dwell[at].copy()
    dwell[at == np.repeat(views, n_ctx)] = np.nan  # the current view is still going on
    training = np.zeros(len(at), dtype=bool)
    users = sessions.user[session_of]
    if seen is not None:
        known = np.flatnonzero(users >= 0)
        sub = seen[users[known]]
        rows = np.r_[rows, known[np.repeat(np.arange(len(known)), np.diff(sub.indptr))]]
        cols = np.r_[cols, sub.indices]
        dwell = np.r_[dwell, np.full(len(sub.indices), np.nan)]
        training = np.r_[training, np.ones(len(sub.indices), dtype=bool)]
        position = np.r_[position, np.full(len(sub.indices), -1)]
    keep = cols >= 0
    rows, cols, dwell, training = rows[keep], cols[keep], dwell[keep], training[keep]
    position = position[keep]
    order = np.lexsort((~training, cols, rows))  # an item in both: the training entry first
    return Contexts(
        len(views), users, rows[order], cols[order].astype(np.int64), training[order],
        dwell[order], position[order].astype(np.int64),
    )  # fmt: skip


def session_estimates(
    lengths: np.ndarray, hits: np.ndarray, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per session: expected number of articles and probability of a single-article
    session under a block with these ``hits`` (``block_hits``' order), by A1-A3."""
    lengths = np.asarray(lengths, np.int64)
    steps = np.maximum(lengths - 1, 0)
    pi = np.where(hits, 1.0, float(rho))
    group_start = np.repeat(np.cumsum(steps) - steps, steps)
    zero = pi == 0
    zc = np.cumsum(zero)
    zc = zc - np.r_[0, zc][group_start]
    lc = np.cumsum(np.log(np.where(zero, 1.0, pi)))
    lc = lc - np.r_[0.0, lc][group_start]
    survive = np.where(zc > 0, 0.0, np.exp(lc))  # prod_{j<=t} pi_j, per step
    session_of = np.repeat(np.arange(len(lengths)), steps)
    expected = 1.0 + np.bincount(session_of, survive, minlength=len(lengths))
    first_pi = np.ones(len(lengths))
    first_pi[steps > 0] = pi[np.cumsum(steps)[steps > 0] - steps[steps > 0]]
    single = np.where(steps > 0, 1.0 - first_pi, 1.0)
    return expected, single
