#!/bin/bash
# The confidence study's 16 searches (2 datasets x 2 models x 4 confidences, 30 trials each),
# one after the other; run from the folder that should hold logs/ (e.g. the repository root):
#   RECSYS_DATA_DIR=../shared/data bash experiments/confidence/run_sweeps.sh
# Rerunning resumes: finished studies are skipped, a killed one continues where it stopped.
set -e
for data in lastfm2k ml_latest_small; do
  for model in als wmf; do
    for conf in binary linear log bm25; do
      recsys-sweep hparams_search=confidence_${model}_${conf} hparams_search.dataset=$data
    done
  done
done
