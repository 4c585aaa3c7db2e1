#!/bin/bash
# Sequential models against item-kNN, iALS, most-recent and popularity (experiments/sequential/
# README.md). Run from the repository root with RECSYS_DATA_DIR set; OUT defaults to
# logs/sequential, DATASETS to both. PHASE=val: settings compared on the validation item
# (split.validation=true); PHASE=test: the chosen settings retrained with the validation item
# in training (split.validation=false) for the number of epochs chosen on validation, tested.
set -e
OUT=${OUT:-logs/sequential}
PHASE=${PHASE:-val}
DATASETS=${DATASETS:-"ml_latest_small publisher_sim"}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread: on a shared 2-core machine, faster
COMMON="logger=[] trainer.enable_progress_bar=false"
[ "$PHASE" = test ] && COMMON="$COMMON split.validation=false"

run() {  # run <dataset> <name> <overrides...>
  local data=$1 name=$2; shift 2
  local dir=$OUT/$PHASE/$data/$name
  [ -f "$dir/metrics.json" ] && { echo "done: $dir"; return; }
  [ -d "$dir" ] && { echo "running or failed (remove it to rerun): $dir"; return; }
  local start=$(date +%s)
  recsys-train experiment=seq_$data $COMMON hydra.run.dir=$dir "$@" > "$OUT/$PHASE.$data.$name.log" 2>&1
  echo "$PHASE $data $name $(( $(date +%s) - start )) s, load $(uptime | sed 's/.*average: //')" | tee -a "$OUT/times.txt"
}
mkdir -p "$OUT"

if [ "$PHASE" = val ]; then
  for data in $DATASETS; do
    [ $data = ml_latest_small ] && LEN=200 || LEN=50  # the paper's: 200 for ML-1M, 50 sparse
    run $data most_recent model=most_recent
    run $data popularity model=popularity
    run $data itemknn model=itemknn
    run $data itemknn_n20 model=itemknn model.neighbors=20
    run $data ials model=als trainer.max_epochs=15
    run $data ials_r5 model=als trainer.max_epochs=15 model.regularization=5
    run $data sasrec_bce model=sasrec model.max_len=$LEN trainer.max_epochs=40
    run $data sasrec_ce model=sasrec model.loss=ce model.batch_size=64 trainer.max_epochs=15
    run $data gru4rec_ce model=gru4rec model.batch_size=64 trainer.max_epochs=15
  done
fi

if [ "$PHASE" = test ]; then  # the settings and epochs chosen on validation (README.md)
  run ml_latest_small most_recent model=most_recent
  run ml_latest_small popularity model=popularity
  run ml_latest_small itemknn model=itemknn model.neighbors=20
  run ml_latest_small ials model=als trainer.max_epochs=10
  run ml_latest_small sasrec model=sasrec model.loss=ce model.batch_size=64 trainer.max_epochs=15
  run ml_latest_small gru4rec model=gru4rec model.batch_size=64 trainer.max_epochs=6
  run publisher_sim most_recent model=most_recent
  run publisher_sim popularity model=popularity
  run publisher_sim itemknn model=itemknn
  run publisher_sim ials model=als trainer.max_epochs=10
  run publisher_sim sasrec model=sasrec model.loss=ce model.batch_size=64 trainer.max_epochs=15
  run publisher_sim gru4rec model=gru4rec model.batch_size=64 trainer.max_epochs=15
fi
