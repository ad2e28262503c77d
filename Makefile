# One target per chore. Everything installs into .venv; torch==2.13.0 goes in
# first so that no other package can drag in a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart test lint format docs bench lock clean

# requirements/constraints.txt pins every package (built by `make lock`), so CI and
# the images install the versions the tests passed with.
CONSTRAINTS := requirements/constraints.txt

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) \
	  -e '.[train,tracking,serve,monitor,ui,tune,postgres,infra,dvc,docs,dev]'
	touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(BIN)/modelyard train task=mnist5k

# mypy first: src/ ships py.typed, so a type error fails the suite like a test.
# The suite runs on TEST_WORKERS processes (pytest-xdist; worksteal evens out the few
# long tests). Most of its time waits on servers, CLI runs and databases, so two
# overlap on a 2-core machine: 13 min serially, under 9 on two (AVX-512 EPYC, 2 vCPU).
# TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2
test: install
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# End to end, in minutes: the images built and run and the compose stack (tests/e2e:
# a running Docker engine and root for debootstrap, which .ci/run provides), the
# docs' runnable examples, a project from `modelyard init` trained and reproduced.
# Kept out of `make test` so that stays under 15 minutes; .ci/run runs both.
e2e: install
	$(BIN)/python -m pytest -m e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns a broken link
# or reference into an error. tests/docs builds it the same way in `make test`.
docs: install
	$(BIN)/mkdocs build --strict

bench: install
	$(BIN)/python benchmarks/training/bench_lightning_overhead.py

# Re-pin after changing dependencies. uv keeps the versions already pinned unless
# pyproject.toml asks for others (--upgrade moves them all). TORCH_WHEELS: where the
# CPU torch wheel is found (this workplace keeps it on disk).
TORCH_WHEELS ?= /opt/wheels
lock: install
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --find-links $(TORCH_WHEELS) \
	  --no-annotate --custom-compile-command "make lock" -o $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .modelyard .pytest_cache site
