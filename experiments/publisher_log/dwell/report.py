"""``python experiments/publisher_log/dwell/report.py DIR``: the tables of README.md from the
sweep written by ``run.sh`` (``DIR/<confidence>/alpha<a>/seed<s>``).

Per run: the best validation NDCG@20 (the checkpoint callback's score: what the sweep's
``optimized_metric`` monitors), test NDCG@20 and recall@20 on the held-out log
(``metrics.json``, tested on that best checkpoint) and NDCG@20 of the same checkpoint against
the simulator's true affinities (``recsys.evaluation.truth.truth_ndcg``, as
``experiments/publisher_sim/truth_ndcg.py``: every reader the model was trained on, training
articles excluded). Alpha is chosen per confidence by the mean over seeds of the validation
NDCG@20 alone; test and truth numbers are reported for the chosen alpha (and, for the record,
for every alpha in the grid table). Per-run values are cached in ``DIR/results.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from recsys.config import compose_run_config
from recsys.evaluation.significance import paired_t_test
from recsys.models.checkpoint import load_model
from recsys.runs.evaluate import checkpoint_datamodule
from recsys.runs.truth import mean_truth_ndcg

CONFIDENCES = ("binary", "dwell", "dwell_per_length", "dwell_quantile")
NAMES = {
    "binary": "binary views",
    "dwell": "raw dwell (saturating seconds)",
    "dwell_per_length": "length-normalized dwell",
    "dwell_quantile": "per-article dwell quantile",
}
COLUMNS = {"truth": "NDCG@20 vs true affinity", "ndcg": "log NDCG@20", "recall": "log recall@20"}
DEFAULT_ALPHA = 10.0  # every confidence config's alpha
_DATA: dict[str, tuple] = {}  # data config -> (datamodule, readers, articles): one per seed


def best_checkpoint(run: Path) -> tuple[Path, float]:
    """The checkpoint tested (best validation NDCG@20) and its validation score."""
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    (state,) = [v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint")]
    best = run / "checkpoints" / Path(state["best_model_path"]).name
    return best, float(state["best_model_score"])


def run_truth_ndcg(ckpt: Path, out: Path, k: int = 20, batch: int = 1024) -> float:
    model = load_model(ckpt)
    key = json.dumps(model.run_config.get("data"), sort_keys=True, default=str)
    if key not in _DATA:
        cfg = compose_run_config("eval", [f"ckpt_path={ckpt}"], out)
        _DATA[key], _ = checkpoint_datamodule(cfg, model)
    return mean_truth_ndcg(model, _DATA[key], k, batch)


def collect(root: Path) -> dict:
    cache_path = root / "results.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    for run in sorted(root.glob("*/alpha*/seed*")):
        name = str(run.relative_to(root))
        if name in cache or not (run / "metrics.json").exists():
            continue
        metrics = json.loads((run / "metrics.json").read_text())
        best, val = best_checkpoint(run)
        cache[name] = {
            "val": val,
            "ndcg": metrics["test/ndcg@20"],
            "recall": metrics["test/recall@20"],
            "truth": run_truth_ndcg(best, run / "truth"),
            "checkpoint": best.name,
        }
        cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return cache


def table(root: Path) -> str:
    results = collect(root)
    runs: dict = {}  # confidence -> alpha -> seed -> values
    for name, values in results.items():
        conf, alpha, seed = Path(name).parts
        runs.setdefault(conf, {}).setdefault(float(alpha[5:]), {})[int(seed[4:])] = values
    confs = [c for c in CONFIDENCES if c in runs]
    seeds = sorted(runs[confs[0]][next(iter(runs[confs[0]]))])

    def series(conf: str, alpha: float, key: str) -> np.ndarray:
        return np.array([runs[conf][alpha][s][key] for s in seeds])

    def ms(v: np.ndarray) -> str:
        return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"

    chosen = {c: max(runs[c], key=lambda a, c=c: series(c, a, "val").mean()) for c in confs}
    out = [f"Seeds {seeds} (data.seed); mean ± standard deviation over seeds.", ""]
    out += ["**Grid** (alpha chosen by the mean validation NDCG@20 only, marked *):", ""]
    out += ["| confidence | alpha | validation NDCG@20 | " + " | ".join(COLUMNS.values()) + " |"]
    out += ["|---|---|---|" + "---|" * len(COLUMNS)]
    for c in confs:
        for a in sorted(runs[c]):
            mark = " *" if a == chosen[c] else ""
            cells = [ms(series(c, a, "val"))] + [ms(series(c, a, k)) for k in COLUMNS]
            out.append(f"| {c} | {a:g}{mark} | " + " | ".join(cells) + " |")
    fixed = {c: DEFAULT_ALPHA for c in confs if DEFAULT_ALPHA in runs[c]}
    for title, alphas in (("At the chosen alpha", chosen),
                          (f"At every config's default alpha ({DEFAULT_ALPHA:g}), untuned, as "
                           "experiments/publisher_sim does", fixed)):  # fmt: skip
        if len(alphas) < len(confs):
            continue
        out += ["", f"**{title}** (paired difference over seeds and paired t-test p, against "
                "raw dwell and against binary views):", ""]  # fmt: skip
        out += ["| confidence | alpha | " + " | ".join(COLUMNS.values()) + " |"]
        out += ["|---|---|" + "---|" * len(COLUMNS)]
        for c in confs:
            cells = []
            for k in COLUMNS:
                v = series(c, alphas[c], k)
                diffs = []
                for ref in ("dwell", "binary"):
                    if ref != c and ref in runs:
                        r = series(ref, alphas[ref], k)
                        diffs.append(f"vs {ref} {(v - r).mean():+.4f}, p {paired_t_test(v, r):.2g}")
                cells.append(ms(v) + (" (" + "; ".join(diffs) + ")" if diffs else ""))
            out.append(f"| {NAMES[c]} (`{c}`) | {alphas[c]:g} | " + " | ".join(cells) + " |")
    out += ["", "**Per seed, at the chosen alpha** (truth NDCG@20 / log NDCG@20 / log "
            "recall@20):", ""]  # fmt: skip
    out += ["| seed | " + " | ".join(f"`{c}`" for c in confs) + " |"]
    out += ["|---|" + "---|" * len(confs)]
    for s in seeds:
        cells = [" / ".join(f"{runs[c][chosen[c]][s][k]:.4f}" for k in COLUMNS) for c in confs]
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py DIR")
    print(table(Path(sys.argv[1])))
