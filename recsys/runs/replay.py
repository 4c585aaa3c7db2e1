"""``recsys-replay``'s run: a checkpoint's block against the "most recent articles" block on
the sessions of its event log's test period (``recsys.evaluation.session_replay``).

The model's block folds in each step's context as a new reader's history: the reader's
training items with their training confidences, and the session's views so far, each one
view with its dwell where the log knows it (not for the current view), weighted by the
confidence fitted at training; an item in both counts with the larger confidence."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from recsys.data.events import sort_into_sessions
from recsys.data.item_times import recency_days
from recsys.errors import RecsysError
from recsys.evaluation import session_replay
from recsys.evaluation.session_replay import (
    Contexts,
    block_hits,
    pool_sizes,
    replay_sessions,
    session_estimates,
)
from recsys.evaluation.session_replay import steps as steps_of
from recsys.evaluation.significance import bootstrap_ratio_ci
from recsys.files import write_text
from recsys.models.base import RecommenderModule
from recsys.runs.evaluate import checkpoint_datamodule, load_checkpoint_model

log = logging.getLogger(__name__)
BLOCKS = ("model", "most_recent")


def replay(cfg: DictConfig) -> dict:
    """Replay the test-period sessions with the checkpoint's block and the most-recent block;
    write and return the results (``replay.json`` in ``cfg.paths.output_dir``)."""
    if cfg.k < 1:
        raise RecsysError(f"k must be >= 1, got {cfg.k}")
    model = load_checkpoint_model(cfg)
    dm, _ = checkpoint_datamodule(cfg, model)
    dataset = dm.dataset
    if not hasattr(dataset, "events"):
        raise RecsysError(
            f"recsys-replay needs the event log the model was trained from (data=events or "
            f"data=publisher_sim); {getattr(dataset, 'name', type(dataset).__name__)} has none"
        )
    events = dataset.events()
    start = cfg.start
    if start is None:
        test = dm.split.test
        if test.timestamps is None or test.nnz == 0:
            raise RecsysError("the test part has no timestamps: give start=<unix seconds>")
        start = float(np.min(test.timestamps))
    gap = getattr(getattr(dataset, "rules", None), "session_gap", 1800.0)
    sessions = replay_sessions(events, start, model.user_ids, model.item_ids, gap)
    widget_sources = list(getattr(dataset, "widget_sources", ["widget"]))
    rho, rho_from = _rho(cfg.rho, events, start, gap, widget_sources)
    published = dm.training_data.item_published
    if published is None:
        raise RecsysError("the data has no publication times or timestamps to replay with")
    seen = model.seen if cfg.with_history else None
    fresh = None if cfg.get("fresh_days") is None else float(cfg.fresh_days) * 86_400.0
    _check_pools(pool_sizes(sessions, published, fresh), cfg.get("fresh_days"))
    scorers = {"model": _model_scorer(model), "most_recent": _recency_scorer(published)}
    hits = {
        name: block_hits(scorer, sessions, published, cfg.k, seen, cfg.batch_size, fresh)
        for name, scorer in scorers.items()
    }
    history = np.where(sessions.user >= 0, np.diff(model.seen.indptr)[sessions.user], 0)
    result = _summarize(sessions, hits, rho, cfg.resamples, history)
    result.update(
        k=int(cfg.k), rho=rho, rho_from=rho_from, start=start, with_history=cfg.with_history,
        fresh_days=cfg.get("fresh_days"),
        checkpoint=str(cfg.ckpt_path), assumptions=_assumptions(),
    )  # fmt: skip
    out = Path(cfg.paths.output_dir)
    write_text(out / "replay.json", json.dumps(result, indent=2) + "\n")
    log.info("session replay (k=%d, rho=%.3f: %s):\n%s", cfg.k, rho, rho_from, _table(result))
    log.info("wrote %s", out / "replay.json")
    return result


def _assumptions() -> str:
    """The estimate's assumptions, as the replay module's docstring states them."""
    return session_replay.__doc__.split("\n\n", 1)[1].strip()


def _model_scorer(model: RecommenderModule):
    """The model's block: scores of each step's context folded in (see the module)."""

    def score(ctx: Contexts) -> torch.Tensor:
        rows, cols, conf = ctx.distinct(context_confidences(model, ctx))
        return model.score_history(rows, cols, conf, ctx.n)

    return score


def context_confidences(model: RecommenderModule, ctx: Contexts) -> np.ndarray:
    """``(n_entries,)`` confidences of the context entries: a training item's training
    confidence; a session view's by the fitted confidence, as one view (strength 1) of a
    new reader whose history is the session so far, with its ``dwell`` where known."""
    conf = np.empty(len(ctx.rows), dtype=np.float32)
    t = ctx.training
    if t.any():
        conf[t] = np.asarray(model.train_confidence[ctx.users[ctx.rows[t]], ctx.cols[t]]).ravel()
    views = ~t  # one entry per article and step
    if views.any():
        conf[views] = model.history_confidences(
            ctx.rows[views], ctx.cols[views], np.ones(int(views.sum())),
            {"dwell": ctx.dwell[views]}, ctx.n,
        )  # fmt: skip
    return conf


def _recency_scorer(published: np.ndarray):
    """The most-recent block's scores (as ``model=most_recent``), the same for every step."""
    days = torch.from_numpy(recency_days(published))
    return lambda ctx: days.expand(ctx.n, -1).clone()


def _rho(rho, events, start, session_gap: float, widget_sources) -> tuple[float, str]:
    if rho is not None:
        if not 0 <= rho <= 1:
            raise RecsysError(f"rho must be in [0, 1], got {rho}")
        return float(rho), "given"
    if "source" in events:  # the replay's own sessions: views after each session's first
        ev, new = sort_into_sessions(events.loc[events["timestamp"] >= start], session_gap)
        later = ~new
        if later.any():
            share = float((~ev.loc[later, "source"].isin(widget_sources)).mean())
            named = ", ".join(widget_sources)
            return share, f"the log's share of later session views not from the widget ({named})"
    log.warning(
        "the log has no source column to estimate rho from (the share of later views not "
        "from the widget): assuming rho=0.5; map it (data.columns.source) or give rho=..."
    )
    return 0.5, "default (the log has no source column)"


def _check_pools(sizes: np.ndarray, fresh_days) -> None:
    """RecsysError when no step has an article to choose from (a block could never hit), with
    the likely cause; a warning when some steps have none."""
    if len(sizes) and not (sizes > 0).any():
        window = f"within fresh_days={fresh_days} before" if fresh_days is not None else "by"
        raise RecsysError(
            f"no article was published {window} any of the {len(sizes):,} replayed views, so "
            "every block would be empty: check the times' unit (data.timestamp_unit) and the "
            "items' publication times, or widen fresh_days"
        )
    empty = int((sizes == 0).sum())
    if empty:
        log.warning(
            "%d of %d steps have no article to choose from (published too late or, with "
            "fresh_days, too early): they count as misses", empty, len(sizes),
        )  # fmt: skip


HISTORY = ((0, 0, "0 (new)"), (1, 2, "1-2"), (3, 9, "3-9"), (10, None, "10+"))
"""Reader segments by training items: a reader the model never saw, or saw with no training
item, is new."""


def _summarize(sessions, hits: dict, rho: float, resamples: int, history: np.ndarray) -> dict:
    """The replay's results over all sessions, and by the reader's training items
    (``history``, per session; ``HISTORY``)."""
    lengths = sessions.lengths
    steps = np.maximum(lengths - 1, 0)
    session_of, view = steps_of(sessions)
    n = len(lengths)
    per = {}
    for name, h in hits.items():
        expected, single = session_estimates(lengths, h, rho)
        per[name] = {
            "hit_rate": np.bincount(session_of, h, minlength=n),
            "articles_per_session": expected,
            "single_article_sessions": single,
        }
    out = {
        "sessions": int(n),
        "steps": int(steps.sum()),
        "sessions_of_new_readers": int((history == 0).sum()),
        "next_articles_unknown_to_the_model": int((sessions.items[view + 1] < 0).sum()),
        "log": {
            "articles_per_session": float(lengths.mean()) if n else float("nan"),
            "single_article_sessions": float((lengths == 1).mean()) if n else float("nan"),
        },
        **_blocks(per, steps, np.ones(n, dtype=bool), resamples),
    }
    out["by_reader_history"] = {}
    for lo, hi, label in HISTORY:
        members = (history >= lo) & (history <= (np.inf if hi is None else hi))
        if members.any():
            out["by_reader_history"][label] = {
                "sessions": int(members.sum()),
                "steps": int(steps[members].sum()),
                **_blocks(per, steps, members, resamples),
            }
    return out


def _blocks(per: dict, steps: np.ndarray, members: np.ndarray, resamples: int) -> dict:
    """Each block's results and their difference, over the sessions in ``members``."""
    ones = np.ones(int(members.sum()))
    out = {
        name: _with_ci({k: v[members] for k, v in per[name].items()}, steps[members], ones,
                       resamples)
        for name in BLOCKS
    }  # fmt: skip
    diff = {key: per["model"][key][members] - per["most_recent"][key][members]
            for key in per["model"]}  # fmt: skip
    out["difference"] = _with_ci(diff, steps[members], ones, resamples)
    return out


def _with_ci(values: dict, steps, ones, resamples: int) -> dict:
    out = {}
    for key, v in values.items():
        den = steps if key == "hit_rate" else ones
        value = float(v.sum() / den.sum()) if den.sum() else float("nan")
        out[key] = {"value": value, "ci95": list(bootstrap_ratio_ci(v, den, resamples=resamples))}
    return out


def _table(r: dict) -> str:
    rows = [
        f"{r['sessions']:,} sessions ({r['sessions_of_new_readers']:,} of readers new to the "
        f"model), {r['steps']:,} next-article steps; log: "
        f"{r['log']['articles_per_session']:.3f} articles per session, "
        f"{r['log']['single_article_sessions']:.3f} single-article sessions",
        f"| block | {' | '.join(k.replace('_', ' ') for k in r['model'])} |",
        "|---|" + "---|" * len(r["model"]),
    ]
    for name in (*BLOCKS, "difference"):
        cells = [
            f"{c['value']:+.4f} [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]"
            if name == "difference"
            else f"{c['value']:.4f} [{c['ci95'][0]:.4f}, {c['ci95'][1]:.4f}]"
            for c in r[name].values()
        ]
        rows.append(f"| {name.replace('_', ' ')} | {' | '.join(cells)} |")
    for label, part in r.get("by_reader_history", {}).items():
        hits = ", ".join(f"{b.replace('_', ' ')} {part[b]['hit_rate']['value']:.4f}"
                         for b in BLOCKS)  # fmt: skip
        rows.append(f"readers with {label} training items: {part['sessions']:,} sessions, "
                    f"{part['steps']:,} steps; hit rate {hits}")  # fmt: skip
    return "\n".join(rows)
