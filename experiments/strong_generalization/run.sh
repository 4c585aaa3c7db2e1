#!/bin/bash
# The strong-generalization table on MovieLens latest-small (experiments/strong_generalization/
# README.md): EASE and iALS tuned on the validation users, popularity; then their test rows
# side by side. Run from the folder that should hold logs/, with RECSYS_DATA_DIR set.
set -e
recsys-sweep hparams_search=sg_ml_latest_small_ease
recsys-sweep hparams_search=sg_ml_latest_small_als
recsys-train experiment=sg_ml_latest_small model=popularity hydra.run.dir=logs/sg/popularity
