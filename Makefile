# Vellum: `make run` serves with the embedded storage, `make test` runs the whole suite.
# Every target creates .venv itself; only Python >= 3.11 and make are needed.
#
# What gets installed is locked, with hashes, in requirements/ (README, "Locked
# dependencies"): runtime.txt for `make run`, test.txt (runtime + test + dev tools) for
# `make test` and `make lint`, build.txt for the build backend, uv.txt for uv itself,
# which installs the others. `make lock` refreshes them from pyproject.toml.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_DIR := .uv
UV := $(UV_DIR)/bin/uv
# uv never downloads a Python of its own: it uses $(PYTHON).
export UV_PYTHON_DOWNLOADS := never
# Hash-checked installs of exactly the locked files, the build backend included (the
# project itself, installed editable, is the one thing without a hash).
UV_INSTALL = --python $(BIN)/python --build-constraints requirements/build.txt
LOCKED = $(UV_INSTALL) --require-hashes
LOCK = $(UV) pip compile --quiet --universal --generate-hashes --python-version 3.11
# Stamps: the venv holds the runtime (`make run`) or everything `make test` needs.
RUNTIME := $(VENV)/.runtime
TOOLS := $(VENV)/.tools

.PHONY: run test test-fast lint format bench schemas lock clean

$(UV): requirements/uv.txt
	@$(PYTHON) -c 'import sys; sys.exit("Vellum needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	test -x $(UV_DIR)/bin/python || $(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/python -m pip install --quiet --require-hashes -r requirements/uv.txt
	touch $(UV)

$(BIN)/python: | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)

# The runtime only; tools a test run installed are left as they are.
$(RUNTIME): requirements/runtime.txt requirements/build.txt pyproject.toml | $(BIN)/python
	$(UV) pip install --quiet $(LOCKED) -r requirements/runtime.txt
	$(UV) pip install --quiet $(UV_INSTALL) --no-deps -e .
	touch $(RUNTIME)

# Exactly the test lock: anything else in the venv is removed.
$(TOOLS): requirements/test.txt requirements/build.txt pyproject.toml | $(BIN)/python
	$(UV) pip sync --quiet $(LOCKED) requirements/test.txt
	$(UV) pip install --quiet $(UV_INSTALL) --no-deps -e .
	touch $(TOOLS) $(RUNTIME)

run: $(RUNTIME)
	$(BIN)/vellum serve

test: lint
	$(BIN)/python -m pytest

# The unit tier: no S3 server, no server processes (the in-memory storage adapter).
test-fast: $(TOOLS)
	$(BIN)/python -m pytest -m "not integration"

lint: $(TOOLS)
	$(BIN)/ruff format --check service tests bench
	$(BIN)/ruff check service tests bench
	$(BIN)/mypy

format: $(TOOLS)
	$(BIN)/ruff format service tests bench
	$(BIN)/ruff check --fix service tests bench

schemas: $(TOOLS)
	$(BIN)/python -m service.schemas schemas

bench: $(TOOLS)
	$(BIN)/python -m bench

# Resolve pyproject.toml's ranges again (newest versions within them) into the locks.
lock: $(UV)
	$(LOCK) pyproject.toml -o requirements/runtime.txt
	$(LOCK) pyproject.toml --group test --group dev -o requirements/test.txt
	echo 'setuptools>=69' | $(LOCK) - -o requirements/build.txt
	echo 'uv==$(shell $(UV) --version | cut -d" " -f2)' | $(LOCK) - -o requirements/uv.txt

clean:
	rm -rf $(VENV) $(UV_DIR) .pytest_cache .mypy_cache .ruff_cache
