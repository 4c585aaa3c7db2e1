#!/bin/bash
# Every number of experiments/publisher_log/dwell/README.md: iALS on data=publisher_sim with four
# confidences (binary views, raw dwell, length-normalized dwell, per-article dwell quantile),
# alpha in {1, 10, 40}, simulator seeds 0..4; one recsys-train sweep (one process), then the
# report (alpha chosen per confidence on validation NDCG@20 only; truth and test reported).
# Usage, from the repository root: bash experiments/publisher_log/dwell/run.sh [OUT] [SPLIT]
# (OUT: logs/publisher_log/dwell; SPLIT: random, the split of experiments/publisher_sim's
# confidence question, or temporal)
set -e
OUT=${1:-logs/publisher_log/dwell}; SPLIT=${2:-random}
BIN=$(dirname "$(command -v recsys-train || echo .venv/bin/recsys-train)")
mkdir -p "$OUT/$SPLIT"
"$BIN/recsys-train" -m data=publisher_sim split=$SPLIT model=als \
  confidence=binary,dwell,dwell_per_length,dwell_quantile confidence.alpha=1,10,40 \
  data.seed=0,1,2,3,4 trainer.enable_progress_bar=false 'logger=[]' \
  hydra.sweep.dir="$OUT/$SPLIT" \
  'hydra.sweep.subdir=${hydra:runtime.choices.confidence}/alpha${confidence.alpha}/seed${data.seed}' \
  > "$OUT/$SPLIT/sweep.log" 2>&1
"$BIN/python" experiments/publisher_log/dwell/report.py "$OUT/$SPLIT" | tee "$OUT/$SPLIT/report.md"
