"""``recsys-compare RUN_DIR RUN_DIR ...``: a table of runs against a baseline run, from their
``per_user_metrics.parquet``: per metric, each run's mean with a bootstrap confidence
interval, its difference to the baseline (with an interval), and paired p-values (t-test,
Wilcoxon signed-rank, and the t-test's p Holm-adjusted over the runs compared with the
baseline). Users are matched by id; only users present in every run are compared.

A run is named by its folder, or by a label: ``NAME=DIR``. A ``recsys-sweep`` folder (with
``study.db``) stands for its best trial. Another directory without
``per_user_metrics.parquet`` whose subdirectories have one (a multirun, e.g. one run per
seed) counts as one run: its per-user metrics are averaged per user over its runs.

Runs must have been evaluated on the same data and split (the data fingerprint stored in
their parquet); ``--allow-different-data`` compares the users that runs on other data share."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.cli import user_errors
from recsys.errors import RecsysError
from recsys.evaluation.significance import bootstrap_ci, holm, paired_t_test, wilcoxon_test
from recsys.files import write_text
from recsys.plots import FORMATS, comparison_figure, save_figure

COLUMNS = [
    "run",
    "metric",
    "users",
    "mean",
    "ci_low",
    "ci_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "p_ttest",
    "p_wilcoxon",
    "p_holm",
]


def load_runs(run_dirs: list[str]) -> dict[str, pd.DataFrame]:
    """Each run's per-user metrics, indexed by user id, under a unique name: its label
    (``NAME=DIR``), else the folder's name, or its path where names repeat."""
    frames = {}
    labelled = [_label(d) for d in run_dirs]
    names = [label or Path(d).name for label, d in labelled]
    for (label, d), name in zip(labelled, names):
        if label and names.count(name) > 1:
            raise RecsysError(f"the label {label!r} is given to more than one run")
        key = name if names.count(name) == 1 else str(d)
        frames[key] = _per_user(Path(d))
    return frames


def _label(arg: str) -> tuple[str | None, str]:
    """``NAME=DIR`` -> (NAME, DIR); a plain directory (even one with '=' in its name) -> (None,
    arg)."""
    name, sep, folder = arg.partition("=")
    if sep and name and not Path(arg).exists():
        return name, folder
    return None, arg


def best_trial_dir(sweep_dir: Path) -> Path:
    """The run directory of the best complete trial of the ``recsys-sweep`` study in
    ``sweep_dir/study.db``."""
    import optuna

    storage = f"sqlite:///{sweep_dir / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = optuna.get_all_study_names(storage)
    if len(names) != 1:
        raise RecsysError(f"{sweep_dir}/study.db holds {len(names)} studies, expected one")
    study = optuna.load_study(study_name=names[0], storage=storage)
    try:
        best = study.best_trial
    except ValueError:
        raise RecsysError(f"the sweep in {sweep_dir} has no complete trial yet") from None
    run_dir = sweep_dir / f"trial_{best.number:03d}"  # the folder may have moved since
    print(f"{sweep_dir}: best trial {best.number} ({best.value:.6f})", file=sys.stderr)
    return run_dir


def _read(path: Path) -> pd.DataFrame:
    """One ``per_user_metrics.parquet``, indexed by user; its ``attrs["data"]`` the data
    fingerprint it was evaluated on (canonical JSON; None for files written before it)."""
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file is the user's input
        raise RecsysError(
            f"{path} is not a readable per-user table ({type(e).__name__}: {e}); "
            "run recsys-eval on the run's checkpoint to write it again"
        ) from None
    if "user" not in frame.columns:
        raise RecsysError(f"{path} has no 'user' column: not written by recsys-train/recsys-eval")
    fingerprint = frame.attrs.get("data_fingerprint")
    frame = frame.set_index("user")
    frame.attrs = {"data": None if fingerprint is None else json.dumps(fingerprint, sort_keys=True)}
    return frame


def _per_user(folder: Path) -> pd.DataFrame:
    """One run's per-user metrics, the best trial's of a sweep, or the per-user mean over the
    runs in its subfolders."""
    if (folder / "study.db").is_file():
        folder = best_trial_dir(folder)
    path = folder / "per_user_metrics.parquet"
    if path.is_file():
        return _read(path)
    inner = sorted(folder.glob("*/per_user_metrics.parquet"))
    if not inner:
        raise RecsysError(
            f"{path} does not exist, nor does any {folder}/*/per_user_metrics.parquet: pass "
            "run directories written by recsys-train or recsys-eval (or a multirun folder)"
        )
    frames = [_read(p) for p in inner]
    users = set(frames[0].index)
    if any(set(f.index) != users for f in frames):
        raise RecsysError(f"the runs under {folder} evaluated different users")
    data = [f.attrs["data"] for f in frames]
    mean = pd.concat(frames).groupby(level=0).mean()
    mean.attrs = {"data": None if None in data else json.dumps(sorted(data))}
    return mean


def check_same_data(runs: dict[str, pd.DataFrame]) -> None:
    """RecsysError unless every run was evaluated on the same data and split (their data
    fingerprints; a multirun folder's is the set of its runs'): per-user differences between
    runs on other data pair unrelated users. Runs written before fingerprints are not
    checked (a warning)."""
    data = {name: frame.attrs.get("data") for name, frame in runs.items()}
    unknown = [name for name, d in data.items() if d is None]
    if unknown:
        print(f"warning: {', '.join(unknown)} hold no data fingerprint (written by an earlier "
              "recsys): not checked for being on the same data", file=sys.stderr)  # fmt: skip
    groups: dict[str, list[str]] = {}
    for name, d in data.items():
        if d is not None:
            groups.setdefault(d, []).append(name)
    if len(groups) > 1:
        shown = "; ".join(", ".join(names) for names in groups.values())
        raise RecsysError(
            f"the runs were evaluated on different data or splits ({shown}): their per-user "
            "metrics cannot be paired; compare runs of the same data, filter, split and seed, "
            "or give --allow-different-data to compare the users they share anyway"
        )


def compare(
    runs: dict[str, pd.DataFrame],
    baseline: str,
    metrics: list[str],
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """The comparison table (columns ``COLUMNS``), one row per run and metric."""
    common = None
    for frame in runs.values():
        common = frame.index if common is None else common.intersection(frame.index)
    if common is None or len(common) == 0:
        raise RecsysError("the runs share no evaluated user: were they tested on the same data?")
    for name, frame in runs.items():
        if len(frame) != len(common):
            print(
                f"warning: {name}: {len(frame) - len(common)} of its {len(frame)} users are "
                "not in every run and are left out",
                file=sys.stderr,
            )
    rows = []
    for metric in metrics:
        missing = [n for n, f in runs.items() if metric not in f.columns]
        if missing:
            raise RecsysError(f"metric {metric} is not in the per-user metrics of {missing}")
        base = runs[baseline].loc[common, metric].to_numpy(np.float64)
        block = []
        for name, frame in runs.items():
            v = frame.loc[common, metric].to_numpy(np.float64)
            keep = ~(np.isnan(v) | np.isnan(base))  # bucket recalls are NaN for some users
            v, b = v[keep], base[keep]
            lo, hi = bootstrap_ci(v, level, resamples, seed)
            row = {"run": name, "metric": metric, "users": len(v), "mean": v.mean()}
            row.update(ci_low=lo, ci_high=hi)
            if name == baseline:
                row.update(diff=0.0, diff_ci_low=0.0, diff_ci_high=0.0)
                row.update(p_ttest=np.nan, p_wilcoxon=np.nan, p_holm=np.nan)
            else:
                dlo, dhi = bootstrap_ci(v - b, level, resamples, seed)
                row.update(diff=(v - b).mean(), diff_ci_low=dlo, diff_ci_high=dhi)
                row.update(p_ttest=paired_t_test(v, b), p_wilcoxon=wilcoxon_test(v, b))
            block.append(row)
        others = [r for r in block if r["run"] != baseline]
        for r, p in zip(others, holm([r["p_ttest"] for r in others])):
            r["p_holm"] = p
        rows.extend(block)
    return pd.DataFrame(rows, columns=COLUMNS)


def to_markdown(table: pd.DataFrame, level: float) -> str:
    pct = f"{level:.0%}"
    head = (
        f"| run | metric | users | mean [{pct} CI] | diff to baseline [{pct} CI] | "
        "p (t-test) | p (Wilcoxon) | p (Holm) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]

    def p(x: float) -> str:
        return "" if np.isnan(x) else ("<0.0001" if x < 1e-4 else f"{x:.4f}")

    for r in table.itertuples():
        lines.append(
            f"| {r.run} | {r.metric} | {r.users} | {r.mean:.4f} [{r.ci_low:.4f}, {r.ci_high:.4f}]"
            f" | {r.diff:+.4f} [{r.diff_ci_low:+.4f}, {r.diff_ci_high:+.4f}]"
            f" | {p(r.p_ttest)} | {p(r.p_wilcoxon)} | {p(r.p_holm)} |"
        )
    return "\n".join(lines)


def default_metrics(runs: dict[str, pd.DataFrame]) -> list[str]:
    columns = [c for c in next(iter(runs.values())).columns if c not in ("n_test", "n_train")]
    common = [c for c in columns if all(c in f.columns for f in runs.values())]
    preferred = [m for m in ("ndcg@20", "recall@20") if m in common]
    return preferred or common


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="recsys-compare", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "runs",
        nargs="+",
        help="run directories (with per_user_metrics.parquet), multirun or sweep folders, "
        "each optionally labelled NAME=DIR",
    )
    ap.add_argument("--baseline", help="the run the others are tested against (default: the first)")
    ap.add_argument("--metrics", nargs="+", help="per-user metric columns, e.g. ndcg@20 recall@20")
    ap.add_argument("--sort", default="mean", choices=["mean", "diff", "p_ttest", "run"])
    ap.add_argument("--format", default="markdown", choices=["markdown", "csv"])
    ap.add_argument("--output", help="write the table to this file instead of stdout")
    ap.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw the table: each run's mean with its interval and a forest plot of the "
        "differences to the baseline, per metric (.png, .svg or .pdf)",
    )
    ap.add_argument("--level", type=float, default=0.95, help="confidence level")
    ap.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ap.add_argument(
        "--allow-different-data",
        action="store_true",
        help="compare runs evaluated on different data or splits (by default refused)",
    )
    ap.add_argument(
        "--history",
        help="only users with this many training interactions: N, LO-HI or LO+ (e.g. 0-2, 3+)",
    )
    return ap.parse_args(argv)


def history_filter(runs: dict[str, pd.DataFrame], spec: str) -> dict[str, pd.DataFrame]:
    """The runs restricted to users whose training interactions ``n_train`` are in ``spec``
    (``N``, ``LO-HI`` inclusive, or ``LO+``)."""
    try:
        if spec.endswith("+"):
            lo, hi = int(spec[:-1]), np.inf
        elif "-" in spec:
            lo, hi = (int(x) for x in spec.split("-", 1))
        else:
            lo = hi = int(spec)
    except ValueError:
        raise RecsysError(f"--history {spec!r}: expected N, LO-HI or LO+ (e.g. 0-2, 3+)") from None
    out = {}
    for name, frame in runs.items():
        if "n_train" not in frame.columns:
            raise RecsysError(
                f"--history: run {name} has no n_train column (written by runs before it "
                "existed); evaluate its checkpoint again with recsys-eval"
            )
        out[name] = frame[(frame["n_train"] >= lo) & (frame["n_train"] <= hi)]
    return out


@user_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.plot and Path(args.plot).suffix.lower() not in FORMATS:
        raise RecsysError(f"--plot {args.plot}: give a file ending in .png, .svg or .pdf")
    runs = load_runs(args.runs)
    if not args.allow_different_data:
        check_same_data(runs)
    names = list(runs)
    baseline = names[0]
    if args.baseline:
        matches = [n for n, d in zip(names, args.runs) if args.baseline in (n, d)]
        if not matches:
            raise RecsysError(f"--baseline {args.baseline} is not one of the runs: {names}")
        baseline = matches[0]
    if args.history:
        runs = history_filter(runs, args.history)
        if all(frame.empty for frame in runs.values()):  # an empty segment: nothing to compare
            note = f"no evaluated user has {args.history} training interactions in these runs"
            if args.output:
                write_text(args.output, note + "\n")
            else:
                print(note)
            return
    metrics = args.metrics or default_metrics(runs)
    table = compare(runs, baseline, metrics, args.level, args.resamples, args.seed)
    ascending = args.sort in ("p_ttest", "run")
    table = table.sort_values(["metric", args.sort], ascending=[True, ascending], kind="stable")
    text = (
        to_markdown(table, args.level) if args.format == "markdown" else table.to_csv(index=False)
    )
    if args.output:
        write_text(args.output, text if text.endswith("\n") else text + "\n")
    else:
        print(text)
    if args.plot:
        save_figure(comparison_figure(table, baseline, args.level), args.plot)
    print(f"baseline: {baseline}", file=sys.stderr)


if __name__ == "__main__":
    main()
