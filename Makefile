# Vellum: `make run` serves with the embedded storage, `make test` runs the whole suite.
# Every target creates .venv itself; only Python >= 3.11 and make are needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall whenever pyproject.toml changes.
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench schemas eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Vellum needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/vellum serve

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check service tests bench
	$(BIN)/ruff check service tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format service tests bench
	$(BIN)/ruff check --fix service tests bench

schemas: $(STAMP)
	$(BIN)/python -m service.schemas schemas

bench: $(STAMP)
	$(BIN)/python -m bench

# The normalizer against the labelled articles (tests/eval/), beside two baselines.
eval: $(STAMP)
	$(BIN)/python -m tests.eval

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
