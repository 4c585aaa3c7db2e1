# Everything runs in a local virtual environment, created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first and pinned: on this machine the CPU wheel lies on disk, on a GPU
# machine PyPI's default (CUDA) build of the same version is taken.
TORCH ?= torch==2.13.0
export RECSYS_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install run test test-fast lint docs format clean bench

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,serve]"
	touch $@

install: $(BIN)/.installed

run: install  ## the default experiment: ALS on the synthetic dataset, on CPU
	$(BIN)/recsys-train $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# tests run on every core (pytest-xdist), a test file's tests in one worker (its fixtures once)
PARALLEL ?= -n auto --dist loadfile

docs: install  ## the documentation site into site/ (MkDocs; warnings are errors)
	$(BIN)/python docs/generate.py --check
	$(BIN)/mkdocs build --strict --quiet

test: lint docs
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

test-fast: install  ## the inner loop: no slow, realdata or gpu tests (about a minute on 2 cores)
	$(BIN)/python -m pytest -m "not slow and not realdata and not gpu" -q $(PARALLEL) $(PYTEST_ARGS)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) logs site .pytest_cache .ruff_cache

bench: install  ## ours against implicit, RecBole and torch.mm (benchmarks/README.md); ARGS="--device cuda" on a GPU
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_implicit.py $(ARGS)
	$(BIN)/python benchmarks/eval_pass.py
	$(BIN)/python benchmarks/bpr_epoch.py
	$(BIN)/python benchmarks/bench_recbole.py
	$(BIN)/python benchmarks/event_log.py
