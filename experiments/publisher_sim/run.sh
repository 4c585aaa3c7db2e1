#!/bin/bash
# Every number of experiments/publisher_sim/README.md, on the 2-core CPU in about 8 minutes.
# Usage, from the repository root: bash experiments/publisher_sim/run.sh [OUT]  (OUT: logs/publisher_sim)
set -e
OUT=${1:-logs/publisher_sim}; mkdir -p "$OUT"
T=recsys-train; Q="trainer.enable_progress_bar=false"

# 1. Confidence: binary views vs raw view counts vs dwell, ALS, 5 simulator seeds, random split
for SEED in 0 1 2 3 4; do
  for C in binary linear dwell; do
    $T data=publisher_sim data.seed=$SEED split=random model=als confidence=$C $Q \
      hydra.run.dir=$OUT/confidence/$C/$SEED > /dev/null 2>&1
  done
done
python experiments/publisher_sim/truth_ndcg.py $OUT/confidence/*/* > $OUT/confidence/truth.tsv
python experiments/publisher_sim/confidence_table.py $OUT/confidence | tee $OUT/confidence/table.md

# 2. Cold start by reader history, temporal split: iALS and WMF, content, the hybrids
# (hybrid: iALS inside; hybrid_wmf: model=hybrid_cf around the WMF run), the site's blocks
S="data=publisher_sim split=temporal confidence=dwell $Q"
for M in als wmf content hybrid most_recent popularity; do
  $T $S model=$M hydra.run.dir=$OUT/cold/$M > /dev/null 2>&1
done
$T $S model=hybrid_cf model.collaborative=$OUT/cold/wmf/checkpoints/last.ckpt \
  hydra.run.dir=$OUT/cold/hybrid_wmf > /dev/null 2>&1
(cd $OUT/cold && for H in 0 1-2 3-9 10+; do
  recsys-compare als wmf content hybrid hybrid_wmf most_recent popularity --history $H \
    --metrics ndcg@20 recall@20
done) > $OUT/cold/compare.md

# 3. Session replay: the hybrid's and content's blocks vs the most-recent block, each choosing
# among the articles of the last 2 days, on logs written under two widget policies
for P in most_recent random; do
  for M in hybrid content; do
    $T $S data.policy=$P model=$M hydra.run.dir=$OUT/replay/$P/$M > /dev/null 2>&1
    recsys-replay ckpt_path=$OUT/replay/$P/$M/checkpoints/last.ckpt fresh_days=2 \
      hydra.run.dir=$OUT/replay/$P/$M/replay > $OUT/replay/$P/$M/replay.log 2>&1
  done
done
grep -h -A6 "session replay" $OUT/replay/*/*/replay.log
