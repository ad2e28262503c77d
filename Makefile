# One target per chore. Everything installs into .venv; torch==2.13.0 goes in
# first so that no other package can drag in a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,tracking,serve,monitor,ui,tune,postgres,infra,dvc,dev]'
	touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(BIN)/modelyard train task=mnist5k

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python benchmarks/training/bench_lightning_overhead.py

clean:
	rm -rf $(VENV) .modelyard .pytest_cache
