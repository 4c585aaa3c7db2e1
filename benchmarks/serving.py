"""Serving latency and throughput: ``recsys.serve.Recommender`` in-process and the HTTP service
(``recsys.service``) over loopback, on a simulated site of 20,000 articles and 100,000 readers.

    python benchmarks/serving.py                       # the table (about 5 min here)
    python benchmarks/serving.py --profile             # + cProfile of each in-process request

The site: ``PublisherSimulator`` (``--readers`` x ``--articles``, ``--days`` of sessions),
written as a publisher export and trained by ``recsys-train`` as the worked example
(``experiments/publisher_log``: temporal split, dwell confidence), ALS with ``--factors`` for
``--epochs``; both are kept in ``--workdir`` and reused while the sizes are the same. The
served catalogue is the export's whole CMS table (articles published in the test period are
new to the model, scored from their content).

Measured, ``--repeats`` times, in-process and HTTP side by side on the same seeded requests
(``--requests`` of each kind per repeat, one at a time): a known reader; a new reader with a
history of 3 articles; a known reader on an article (``context``); a known reader with
``now`` and ``fresh_days=2``; related articles. HTTP: one client (``http.client``, one
keep-alive connection, sequential requests, JSON decoded) against the service in a child
process on 127.0.0.1. Then the batch export of every reader (``recommend_users``, k=10).
Prints medians over repeats with their spread (min-max), and the load average at each
repeat: this is a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
KINDS = ("known reader", "new reader, history of 3", "known reader + context",
         "known reader, fresh_days=2", "related articles")  # fmt: skip


# -- the site and the model -----------------------------------------------------------------
def prepared(args) -> tuple[Path, Path]:
    """``(checkpoint, articles.csv)``: the export and the trained model in ``--workdir``,
    made now unless there with the same sizes."""
    work = Path(args.workdir)
    sizes = {k: getattr(args, k) for k in ("readers", "articles", "days", "sessions", "seed")}
    export = work / "export"
    if _stamp(export) != sizes:
        from recsys.data.datasets.publisher_sim import PublisherSimulator

        start = time.perf_counter()
        sim = PublisherSimulator(n_readers=args.readers, n_articles=args.articles,
                                 days=args.days, initial_articles=args.articles // 10,
                                 sessions_per_reader=args.sessions, seed=args.seed)  # fmt: skip
        written = sim.write_export(export)
        _stamp(export, sizes)
        print(f"# export: {written['views_written']:,} views, {written['articles_written']:,} "
              f"articles ({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    model = {**sizes, "factors": args.factors, "epochs": args.epochs}
    run = work / "als"
    ckpt = run / "checkpoints" / "last.ckpt"
    if _stamp(run) != model or not ckpt.is_file():
        start = time.perf_counter()
        cmd = [str(Path(sys.executable).parent / "recsys-train"),
               "--config-dir", str(REPO / "experiments/publisher_log/configs"),
               "experiment=publisher_log", "model=als", f"model.factors={args.factors}",
               f"trainer.max_epochs={args.epochs}", "split.val_ratio=0", "logger=[]",
               f"hydra.run.dir={run}"]  # fmt: skip
        env = {**os.environ, "PUBLISHER_EXPORT": str(export.resolve())}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"recsys-train failed:\n{done.stderr[-3000:]}")
        _stamp(run, model)
        print(f"# trained: ALS, {args.factors} factors, {args.epochs} epochs "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    return ckpt, export / "articles.csv"


def _stamp(folder: Path, sizes: dict | None = None):
    path = folder / "bench_sizes.json"
    if sizes is not None:
        path.write_text(json.dumps(sizes))
        return sizes
    return json.loads(path.read_text()) if path.is_file() else None


# -- requests -------------------------------------------------------------------------------
def requests_of(rec, kind: str, n: int, seed: int, now: str) -> list[tuple[str, dict]]:
    """``n`` seeded requests of ``kind``: ``(endpoint, parameters)``."""
    rng = np.random.default_rng(seed)
    users = rec.model.user_ids
    known = rec.item_ids[: rec.n_known]

    def user():
        return str(users[rng.integers(len(users))])

    def article():
        return str(known[rng.integers(len(known))])

    make = {
        KINDS[0]: lambda: ("recommend", {"user": user(), "k": 10}),
        KINDS[1]: lambda: ("recommend", {"history": [article() for _ in range(3)], "k": 10}),
        KINDS[2]: lambda: ("recommend", {"user": user(), "context": article(), "k": 10}),
        KINDS[3]: lambda: ("recommend", {"user": user(), "k": 10, "now": now, "fresh_days": 2}),
        KINDS[4]: lambda: ("related", {"item": article(), "k": 10}),
    }[kind]
    return [make() for _ in range(n)]


def in_process(rec, endpoint: str, params: dict) -> dict:
    if endpoint == "related":
        params = dict(params)
        return rec.related(params.pop("item"), **params)
    return rec.recommend(**params)


class Client:
    """One keep-alive HTTP connection, requests one at a time."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def __call__(self, endpoint: str, params: dict) -> dict:
        query = urllib.parse.urlencode(
            {k: ",".join(v) if isinstance(v, list) else v for k, v in params.items()}
        )
        self.connection.request("GET", f"/{endpoint}?{query}")
        answer = self.connection.getresponse()
        body = json.loads(answer.read())
        if answer.status != 200:
            raise RuntimeError(f"{endpoint} {params}: {answer.status} {body}")
        return body


def timed(call, requests) -> list[float]:
    out = []
    for endpoint, params in requests:
        start = time.perf_counter()
        call(endpoint, params)
        out.append(time.perf_counter() - start)
    return out


# -- the service in a child process ---------------------------------------------------------
def serve_child(ckpt: str, items: str, port: int) -> None:
    """The HTTP service (``recsys.service``'s app and server, as ``recsys-serve`` runs them)."""
    from recsys.serve import Recommender
    from recsys.service import create_app, listening_socket, server_for

    sock = listening_socket("127.0.0.1", port)
    app = create_app(Recommender.load(ckpt, items=items))
    # connections stay open while the other kinds and ways take their turns (uvicorn: 5 s)
    server = server_for(app, log_level="warning", access_log=False, timeout_keep_alive=3600)
    server.run(sockets=[sock])


@contextlib.contextmanager
def service(ckpt: Path, items: Path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cmd = [sys.executable, __file__, "--serve-child", str(ckpt), str(items), str(port)]
    proc = subprocess.Popen(cmd)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the HTTP service did not start")
                time.sleep(0.2)
        yield Client(port)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


# -- report ---------------------------------------------------------------------------------
def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def ms(x: float) -> str:
    return f"{1e3 * x:.1f}"


def spread(xs: list[float], scale=ms) -> str:
    return f"{scale(statistics.median(xs))} ({scale(min(xs))}-{scale(max(xs))})"


def profile(rec, requests_by_kind: dict) -> None:
    for kind, requests in requests_by_kind.items():
        prof = cProfile.Profile()
        prof.enable()
        timed(lambda e, p: in_process(rec, e, p), requests)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(8)
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        print(f"\n## cProfile, in-process, {kind} ({len(requests)} requests; by own time)\n")
        print("```\n" + "\n".join(lines[2:]) + "\n```")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="/tmp/recsys_serving_bench")
    p.add_argument("--readers", type=int, default=100_000)
    p.add_argument("--articles", type=int, default=20_000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--sessions", type=float, default=10.0, help="sessions per reader")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--requests", type=int, default=200, help="of each kind, per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--export-repeats", type=int, default=3)
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--serve-child", nargs=3, metavar=("CKPT", "ITEMS", "PORT"))
    args = p.parse_args()
    if args.serve_child:
        ckpt, items, port = args.serve_child
        serve_child(ckpt, items, int(port))
        return

    import torch

    from recsys.serve import Recommender

    start = time.perf_counter()
    ckpt, items = prepared(args)
    loading = time.perf_counter()
    rec = Recommender.load(ckpt, items=items)
    loading = time.perf_counter() - loading
    now_s = float(np.max(rec.published[np.isfinite(rec.published)]))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s))
    fresh = int(((rec.published <= now_s) & (rec.published >= now_s - 2 * 86_400)).sum())
    print(f"# {len(rec.model.user_ids):,} readers in the model, {len(rec.item_ids):,} articles "
          f"({rec.n_known:,} known to the model, {len(rec.item_ids) - rec.n_known:,} new), "
          f"ALS {args.factors} factors; {fresh:,} articles in the 2 days before now={now}; "
          f"Recommender.load {loading:.1f} s")  # fmt: skip
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"# uptime at start: {uptime()}")
    requests = {kind: requests_of(rec, kind, args.requests, i, now) for i, kind in enumerate(KINDS)}
    if args.profile:
        profile(rec, requests)
    ways = {"in-process": lambda e, q: in_process(rec, e, q)}
    results = {kind: {way: [] for way in ways} for kind in KINDS}  # seconds, per repeat
    loads = []
    with contextlib.ExitStack() as stack:
        for way in [] if args.no_http else ["HTTP"]:
            client = stack.enter_context(service(ckpt, items))
            for kind, reqs in requests.items():  # the same lists either way
                for endpoint, params in reqs[:5]:
                    assert client(endpoint, params) == in_process(rec, endpoint, params), kind
            ways[way] = client
            for kind in KINDS:
                results[kind][way] = []
        for call in ways.values():  # warm-up
            for reqs in requests.values():
                timed(call, reqs[:10])
        for _ in range(args.repeats):  # each kind, each way in turn
            loads.append(os.getloadavg()[0])
            for kind, reqs in requests.items():
                for way, call in ways.items():
                    results[kind][way].append(timed(call, reqs))
        users = list(rec.model.user_ids)
        export = {"recommend_users": []}
        for _ in range(args.export_repeats):
            loads.append(os.getloadavg()[0])
            begin = time.perf_counter()
            rec.recommend_users(users, k=10)
            export["recommend_users"].append(time.perf_counter() - begin)
    print(
        f"# {args.repeats} repeats x {args.requests} requests of each kind, each way in turn; "
        f"load average (1 min) at each repeat and export: {', '.join(f'{x:.1f}' for x in loads)}"
    )
    print(f"# uptime at end: {uptime()}\n")
    print("| request | path | p50 (ms) | p99 (ms) | requests/s, one at a time |")
    print("|---|---|---|---|---|")
    for kind in KINDS:
        for way, runs in results[kind].items():
            p50 = spread([float(np.percentile(r, 50)) for r in runs])
            p99 = spread([float(np.percentile(r, 99)) for r in runs])
            rate = spread([len(r) / sum(r) for r in runs], lambda x: f"{x:.0f}")
            print(f"| {kind} | {way} | {p50} | {p99} | {rate} |")
    print(
        f"\nBatch export, `recommend_users` of all {len(users):,} readers, k=10, in-process "
        f"(median (min-max) of {args.export_repeats}):\n"
    )
    print("| call | seconds | readers/s |\n|---|---|---|")
    for name, seconds in export.items():
        rate = spread([len(users) / x for x in seconds], lambda x: f"{x:,.0f}")
        print(f"| {name} | {spread(seconds, lambda x: f'{x:.1f}')} | {rate} |")
    print("\nMedians over repeats, (min-max) across repeats; p50/p99 within each repeat.")
    print(f"\n# total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
