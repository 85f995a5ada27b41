# Sunflower (向阳花). `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
SUNFLOWER := $(VENV)/bin/sunflower
export SUNFLOWER_HOME ?= $(CURDIR)/var
HOST ?= 127.0.0.1
PORT ?= 8000
PERSONS ?= 3000
START ?= 2023-01-01
END ?= 2025-12-31
SEED ?= 20261128
DATA ?=
TODAY ?= $(shell date -d "$(END) + 1 day" +%F)
# The morning before, scored first, so the pages' 较上次 / since the last scores have a run to compare with.
PREVIOUS ?= $(shell date -d "$(TODAY) - 1 day" +%F)
TRUTH_ARG = $(if $(DATA),,--truth $(SUNFLOWER_HOME)/district/truth.parquet)

.PHONY: run test lint bench setup clean lock

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==0.13.9
	$(UV) pip install -q --python $(PY) -r requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $@

# The main job on embedded defaults: simulate a district (unless DATA=dir is given),
# ingest it, train and register both models, score the district's "today" (the
# morning after its last simulated day), create demo accounts and serve on $(HOST).
run: setup
	@if [ -z "$(DATA)" ]; then \
	  $(SUNFLOWER) simulate --persons $(PERSONS) --start $(START) --end $(END) --seed $(SEED) \
	    --out $(SUNFLOWER_HOME)/district --report; \
	fi
	$(SUNFLOWER) ingest $(or $(DATA),$(SUNFLOWER_HOME)/district)
	$(SUNFLOWER) train --outcome relapse $(TRUTH_ARG)
	$(SUNFLOWER) train --outcome loss_of_contact $(TRUTH_ARG)
	$(SUNFLOWER) score --date $(PREVIOUS)
	$(SUNFLOWER) score --date $(TODAY)
	$(SUNFLOWER) users demo --host $(HOST) --port $(PORT)
	$(SUNFLOWER) serve --host $(HOST) --port $(PORT)

# Lint first (ruff, format check, mypy, import-linter), then every test.
test: lint tests/web/node_modules/.installed
	$(PY) -m pytest -n 2 --dist loadgroup tests

# axe-core (npm, pinned in tests/web/package-lock.json) for the browser tests' accessibility check.
tests/web/node_modules/.installed: tests/web/package.json tests/web/package-lock.json
	npm ci --prefix tests/web --no-audit --no-fund
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m benchmarks

# Re-resolve the pinned tree after changing pyproject.toml.
lock: $(VENV)/.installed
	$(UV) pip compile -q --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
