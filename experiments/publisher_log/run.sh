#!/bin/bash
# The agency's path on a publisher export, from config files only (no Python of yours):
# simulated export -> dwell-weighted iALS for warm readers, content on the current article
# for cold ones (the hybrid), popularity correction, the site's blocks as baselines -> session
# replay against "most recent" -> served lists for a known reader and a new reader.
# Usage, from the repository root: bash experiments/publisher_log/run.sh [OUT]
# From the environment: READERS (20000), ARTICLES (3000), DAYS (30), SEED (0), and POLICY
# (most_recent): what the site's widget showed while the log was written.
set -euo pipefail
OUT=${1:-logs/publisher_log}; mkdir -p "$OUT"
export PUBLISHER_EXPORT=$(cd "$OUT" && pwd)/export
CD="--config-dir experiments/publisher_log/configs"
E="experiment=publisher_log seed=${SEED:-0}"

# 0. The export an agency receives: views.csv (reader, article, time, session, dwell, source)
#    and articles.csv (the CMS: title, body, section, published, words)
recsys-data simulate-publisher "$PUBLISHER_EXPORT" --readers "${READERS:-20000}" \
  --articles "${ARTICLES:-3000}" --days "${DAYS:-30}" --seed "${SEED:-0}" \
  --policy "${POLICY:-most_recent}"

# 1. Models: the hybrid (iALS for readers with >= 4 training articles, content for the
#    others, new articles placed by their content), with and without popularity correction
#    (Rel-MF's loss, propensities from training popularity); iALS alone; the baselines
recsys-train $CD $E model=hybrid model.n_min=4 hydra.run.dir=$OUT/hybrid
recsys-train $CD $E model=hybrid model.n_min=4 model.correction=relmf propensity=popularity \
  hydra.run.dir=$OUT/hybrid_relmf
recsys-train $CD $E model=als hydra.run.dir=$OUT/als
recsys-train $CD $E model=content hydra.run.dir=$OUT/content
recsys-train $CD $E model=popularity hydra.run.dir=$OUT/popularity
recsys-train $CD $E model=most_recent hydra.run.dir=$OUT/most_recent

# 2. Offline evaluation by reader history (0 = readers new to the model)
(cd "$OUT" && recsys-compare hybrid hybrid_relmf als content popularity most_recent \
  --metrics ndcg@20 recall@20 && for H in 0 1-2 3-9 10+; do
  recsys-compare hybrid hybrid_relmf als content popularity most_recent --history $H \
    --metrics ndcg@20 recall@20; done) > "$OUT/compare.md"

# 2b. Engagement by section and length of the CMS table (engagement.csv, .md, .svg)
recsys-engagement $CD $E hydra.run.dir=$OUT/engagement > /dev/null

# 3. Session replay of the test period: each block against "most recent", both choosing
#    among the articles of the last 2 days
for M in hybrid hybrid_relmf content; do
  recsys-replay ckpt_path=$OUT/$M/checkpoints/last.ckpt fresh_days=2 \
    hydra.run.dir=$OUT/replay/$M > /dev/null
done

# 4. Served lists (JSON lines, or Parquet for exports) from the corrected hybrid, among the
#    articles of the last 2 days before the log's end: the most active reader; a new reader
#    on the latest article; every reader; the related-articles table
CKPT=$OUT/hybrid_relmf/checkpoints/last.ckpt
NOW=$(tail -n 1 "$PUBLISHER_EXPORT/views.csv" | cut -d, -f3)
READER=$(tail -n +2 "$PUBLISHER_EXPORT/views.csv" | cut -d, -f1 | sort | uniq -c | sort -rn \
  | awk 'NR == 1 {print $2}')
ARTICLE=$(tail -n 1 "$PUBLISHER_EXPORT/articles.csv" | cut -d, -f1)
mkdir -p "$OUT/lists"
recsys-recommend ckpt_path=$CKPT users=[$READER] now=$NOW fresh_days=2 k=5 \
  output=$OUT/lists/known_reader.jsonl
recsys-recommend ckpt_path=$CKPT context=$ARTICLE now=$NOW fresh_days=2 k=5 \
  output=$OUT/lists/new_reader_on_article.jsonl
recsys-recommend ckpt_path=$CKPT users=all now=$NOW fresh_days=2 k=10 \
  output=$OUT/lists/all_readers.parquet
recsys-recommend ckpt_path=$CKPT related=true now=$NOW fresh_days=7 k=5 \
  output=$OUT/lists/related.parquet
