#!/bin/bash
# How gowalla_bpr's per-pair setting was chosen (one GPU, about 7 minutes): for each lambda,
# run A on the full training part (a checkpoint every 5 epochs) and run B with 10% of the
# training pairs held out (validation every 5 epochs), all four side by side, each stopped
# after CAP; then pick_bpr.py chooses lambda and epoch on B's validation recall@20 and A's
# checkpoint at that epoch is evaluated on the test part. Usage, from the repository root:
#   RECSYS_DATA_DIR=../shared/data bash experiments/gowalla/bpr_select.sh /tmp/bpr_select
set -e
ROOT=${1:-/tmp/bpr_select}; CAP=${CAP:-00:00:06:30}; mkdir -p "$ROOT"
COMMON="experiment=gowalla_bpr trainer=gpu model.shared_negatives=false trainer.max_epochs=100
  +trainer.max_time=$CAP trainer.enable_progress_bar=false"
for REG in 0.001 0.003; do
  recsys-train $COMMON model.regularization=$REG hydra.run.dir=$ROOT/A$REG \
    +callbacks.model_checkpoint.every_n_epochs=5 +callbacks.model_checkpoint.save_top_k=-1 \
    > "$ROOT/A$REG.log" 2>&1 &
  recsys-train $COMMON model.regularization=$REG hydra.run.dir=$ROOT/B$REG \
    split.val_ratio=0.1 trainer.check_val_every_n_epoch=5 optimized_metric=val/recall@20 \
    > "$ROOT/B$REG.log" 2>&1 &
done
wait
python3 experiments/gowalla/pick_bpr.py "$ROOT" 0.001 0.003   # writes $ROOT/pick.env
source "$ROOT/pick.env"
recsys-eval ckpt_path=$ROOT/A$REG/checkpoints/$CKPT trainer=gpu hydra.run.dir=$ROOT/test
grep -E '"test/(recall|ndcg)@20"' "$ROOT/test/metrics.json"
