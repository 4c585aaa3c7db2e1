"""``python experiments/confidence/report.py [LOGS]``: the confidence study's tables from its
16 sweeps under LOGS/sweeps (default ``logs``): for each dataset and model, the best trial of
each confidence (chosen on validation ndcg@20) on the test part, with 95% bootstrap intervals
and paired p-values against binary (``recsys-compare``), then the command that reruns each
row (the best trial's own ``recsys-train`` overrides)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from recsys.compare import best_trial_dir, compare, load_runs, to_markdown

CONFIDENCES = ["binary", "linear", "log", "bm25"]
DATASETS = ["lastfm2k", "ml_latest_small"]
MODELS = ["als", "wmf"]


def main(logs: Path) -> None:
    for data in DATASETS:
        for model in MODELS:
            sweeps = {c: logs / "sweeps" / f"confidence_{data}_{model}_{c}" for c in CONFIDENCES}
            missing = [str(p) for p in sweeps.values() if not (p / "study.db").is_file()]
            if missing:
                print(f"\n### {data}, {model}: not run yet ({', '.join(missing)})")
                continue
            runs = load_runs([f"{c}={p}" for c, p in sweeps.items()])
            table = compare(runs, "binary", ["ndcg@20", "recall@20"])
            print(f"\n### {data}, {model}\n")
            print(to_markdown(table, 0.95))
            print("\nRows' commands (the best trial's overrides):\n\n```bash")
            for sweep in sweeps.values():
                path = best_trial_dir(sweep) / ".hydra" / "overrides.yaml"
                overrides = yaml.safe_load(path.read_text())
                print("recsys-train " + " ".join(map(_quote, overrides)))
            print("```")


def _quote(override: str) -> str:
    return f"'{override}'" if any(ch in override for ch in "[],") else override


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "logs"))
