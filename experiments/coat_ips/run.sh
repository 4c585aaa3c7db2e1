#!/bin/bash
# The whole coat_ips study: tune each side on validation (same grid size), then 10 seeds of
# each tuned side on the random test set, then the comparison tables. Needs RECSYS_DATA_DIR.
# Usage: bash experiments/coat_ips/run.sh [OUT_DIR]   (default logs/coat_ips)
set -euo pipefail
OUT=${1:-logs/coat_ips}
mkdir -p "$OUT"
HERE=$(dirname "$0")
RUN="recsys-train -m trainer.enable_progress_bar=false"
declare -A GRID=(
  [als]="model.regularization=0.1,1,10 confidence.alpha=1,10 trainer.max_epochs=15"
  [wmf]="model.regularization=0.1,1,10 confidence.alpha=1,10 model.batch_users=64 trainer.max_epochs=60"
  [bpr]="model.lr=0.01,0.003 model.regularization=0.0001,0.001,0.01 model.n_negatives=10 model.batch_size=256 trainer.max_epochs=60"
)
for model in als wmf bpr; do
  for side in "" ips_; do
    exp=coat_${side}${model}
    # 1. tuning: 20% of each user's training positives as validation, seed 0
    $RUN experiment=$exp split.val_ratio=0.2 seed=0 ${GRID[$model]} \
      hydra.sweep.dir=$OUT/tune/$exp > $OUT/$exp.tune.log 2>&1
    best=$(python "$HERE/choose_best.py" $OUT/tune/$exp)
    echo "$exp: $best" | tee -a $OUT/chosen.txt
    # 2. ten seeds of the chosen setting on the full training part, tested on the random test
    $RUN $best seed=0,1,2,3,4,5,6,7,8,9 hydra.sweep.dir=$OUT/final/$exp > $OUT/$exp.final.log 2>&1
  done
  # 3. naive vs corrected, per-user means over the seeds
  recsys-compare $OUT/final/coat_$model $OUT/final/coat_ips_$model \
    --metrics ndcg@5 recall@5 > $OUT/compare_$model.md
done
