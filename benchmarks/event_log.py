"""``python benchmarks/event_log.py [--events 20000000]``: reading an event log to
interactions (``data=events``: ``EventLog(...).load()``), CSV and Parquet, timed by stage.

The log: ``--events`` events of ``--users`` users on ``--items`` items drawn by this script
(numpy, seed 0: users and items by Zipf-like popularity, each user's events at increasing
Unix seconds over a year, event types view / like / purchase at 90 / 8 / 2 %), with the
columns ``user_id,item_id,timestamp,event_type``, written once as CSV and as Parquet in a
temporary folder. Each format is read ``--repeats`` times, alternating, with the rules
``strength: weighted`` and ``event_weights {view: 1, like: 4, purchase: 10}`` (sessions by a
30-minute gap); prints the median wall time, events per second and, with ``--profile``,
cProfile's top lines of one read of each."""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.datasets.eventlog import EventLog

RULES = {"strength": "weighted", "event_weights": {"view": 1, "like": 4, "purchase": 10}}
COLUMNS = {"user": "user_id", "item": "item_id", "timestamp": "timestamp",
           "event_type": "event_type"}  # fmt: skip


def draw_log(n_events: int, n_users: int, n_items: int, seed: int = 0) -> pd.DataFrame:
    """The benchmark's log (see the module docstring), in time order per user."""
    rng = np.random.default_rng(seed)
    user_p = 1.0 / np.arange(1, n_users + 1) ** 0.8
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    users = rng.choice(n_users, size=n_events, p=user_p / user_p.sum())
    items = rng.choice(n_items, size=n_events, p=item_p / item_p.sum())
    times = 1_700_000_000 + rng.integers(0, 365 * 86400, size=n_events)
    order = np.lexsort((times, users))
    kinds = np.array(["view", "like", "purchase"])[
        rng.choice(3, size=n_events, p=[0.90, 0.08, 0.02])
    ]
    return pd.DataFrame({"user_id": users[order], "item_id": items[order],
                         "timestamp": times[order], "event_type": kinds})  # fmt: skip


def read_seconds(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    interactions = EventLog(str(path), COLUMNS, rules=RULES).load()
    return time.perf_counter() - start, interactions.nnz


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000_000)
    p.add_argument("--users", type=int, default=138_000)
    p.add_argument("--items", type=int, default=27_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    folder = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    log = draw_log(a.events, a.users, a.items)
    paths = {"csv": folder / "events.csv", "parquet": folder / "events.parquet"}
    log.to_csv(paths["csv"], index=False)
    log.to_parquet(paths["parquet"], index=False)
    sizes = {k: v.stat().st_size / 2**20 for k, v in paths.items()}
    print(f"# {a.events:,} events, {a.users:,} users x {a.items:,} items; CSV {sizes['csv']:.0f} "
          f"MiB, Parquet {sizes['parquet']:.0f} MiB (drawn and written in "
          f"{time.perf_counter() - start:.0f} s); medians of {a.repeats} (min-max)\n")  # fmt: skip
    del log
    seconds = {k: [] for k in paths}
    pairs = {}
    for _ in range(a.repeats):  # alternating
        for fmt, path in paths.items():
            s, pairs[fmt] = read_seconds(path)
            seconds[fmt].append(s)
    print("| format | read to interactions (s) | events per second | pairs |")
    print("|---|---|---|---|")
    for fmt, xs in seconds.items():
        m = statistics.median(xs)
        print(f"| {fmt} | {m:.1f} ({min(xs):.1f}-{max(xs):.1f}) | {a.events / m / 1e6:.2f}M | "
              f"{pairs[fmt]:,} |")  # fmt: skip
    if a.profile:
        for fmt, path in paths.items():
            profile = cProfile.Profile()
            profile.runcall(read_seconds, path)
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
            print(f"\n## {fmt}, cProfile (cumulative)\n{out.getvalue()}")


if __name__ == "__main__":
    main()
