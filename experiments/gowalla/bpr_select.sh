#!/bin/bash
# How gowalla_bpr's per-pair setting is chosen on one GPU: for each variant (LABEL:OVERRIDES,
# the overrides comma-separated), run A on the full training part (a checkpoint every 5
# epochs) and run B with 10% of the training pairs held out (validation every 5 epochs), all
# side by side, each stopped after CAP; then pick_bpr.py chooses the variant and epoch on B's
# validation recall@20, and A's checkpoint at that epoch is evaluated on the test part.
# EXTRA: overrides added to every training run, EVAL_EXTRA to the test evaluation (a dry run
# on the CPU: EXTRA="data=ml100k split=random trainer=cpu" EVAL_EXTRA=trainer=cpu).
# Usage, from the repository root (the default variants: the two lambdas of the first run):
#   RECSYS_DATA_DIR=../shared/data bash experiments/gowalla/bpr_select.sh /tmp/bpr_select
#   VARIANTS="b256:model.batch_size=256 b256lr1:model.batch_size=256,model.lr=0.001" \
#     RECSYS_DATA_DIR=../shared/data bash experiments/gowalla/bpr_select.sh /tmp/bpr_b256
set -e
ROOT=${1:-/tmp/bpr_select}; CAP=${CAP:-00:00:06:30}; mkdir -p "$ROOT"
VARIANTS=${VARIANTS:-"0.001:model.regularization=0.001 0.003:model.regularization=0.003"}
TRAIN=${TRAIN:-recsys-train}; EVAL=${EVAL:-recsys-eval}
COMMON="experiment=gowalla_bpr trainer=gpu model.shared_negatives=false trainer.max_epochs=100
  +trainer.max_time=$CAP trainer.enable_progress_bar=false $EXTRA"
LABELS=()
for V in $VARIANTS; do
  L=${V%%:*}; O=${V#*:}; O=${O//,/ }; LABELS+=("$L")
  $TRAIN $COMMON $O hydra.run.dir=$ROOT/A$L \
    +callbacks.model_checkpoint.every_n_epochs=5 +callbacks.model_checkpoint.save_top_k=-1 \
    > "$ROOT/A$L.log" 2>&1 &
  $TRAIN $COMMON $O hydra.run.dir=$ROOT/B$L \
    split.val_ratio=0.1 trainer.check_val_every_n_epoch=5 optimized_metric=val/recall@20 \
    > "$ROOT/B$L.log" 2>&1 &
done
wait
python3 experiments/gowalla/pick_bpr.py "$ROOT" "${LABELS[@]}"   # writes $ROOT/pick.env
source "$ROOT/pick.env"
$EVAL ckpt_path=$ROOT/A$LABEL/checkpoints/$CKPT trainer=gpu $EVAL_EXTRA hydra.run.dir=$ROOT/test
grep -E '"test/(recall|ndcg)@20"' "$ROOT/test/metrics.json"
