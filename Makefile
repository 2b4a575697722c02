# closedloop: `make demo` runs the fraud-detection demo, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	# crowd-kit is the reference for consolidation tests only; its full requirements pull in transformers.
	$(BIN)/pip install --quiet --no-deps 'crowd-kit>=1.4'
	$(BIN)/pip install --quiet pandas scipy scikit-learn attrs tqdm nltk
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/closedloop --home .closedloop-demo demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_loops.py

clean:
	rm -rf $(VENV) .closedloop-demo demo-out .pytest_cache .mypy_cache .ruff_cache
