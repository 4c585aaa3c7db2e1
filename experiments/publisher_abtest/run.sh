#!/bin/bash
# The target case's A/B test on the closed-loop site, and how its conclusion moves with the
# simulator's main assumptions. From the repository root: bash experiments/publisher_abtest/run.sh [OUT]
# The main run takes about 7 minutes on 2 cores, each sensitivity run about 2 (their trained
# arms are retrained weekly instead of daily).
set -euo pipefail
OUT=${1:-logs/publisher_abtest}
S="recsys-simulate --config-dir experiments/publisher_abtest/configs --config-name publisher_abtest"

# 1. The test: most recent, the hybrid (dwell-weighted iALS + content fallback), the same with
#    popularity correction, a random recent block; 14 days after a 30-day backlog
$S hydra.run.dir=$OUT/main

# 2. Sensitivity: click propensity by position (slot s examined with 0.7 x decay^s) and the
#    readers' own navigation after a view without a block click (organic share)
W="arms.hybrid.retrain_days=7 arms.hybrid_relmf.retrain_days=7"
$S $W hydra.run.dir=$OUT/weekly                                   # the main setting, weekly
$S $W response.position_decay=0.6 hydra.run.dir=$OUT/decay_0.6      # lower slots rarely seen
$S $W response.position_decay=0.95 hydra.run.dir=$OUT/decay_0.95    # every slot seen alike
$S $W response.organic_after_read=0.3 response.organic_after_bounce=0.15 \
  hydra.run.dir=$OUT/organic_low                                    # readers rely on the block
$S $W response.organic_after_read=0.6 response.organic_after_bounce=0.35 \
  hydra.run.dir=$OUT/organic_high                                   # readers find their own way
