# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test lint demo bench bench-routeros check-services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## dev: create .venv and install the project with its test extras
dev: $(STAMP)

## check-services: install missing system packages the tests use (libfaketime; chromium for the dashboard's browser tests), fail clearly when PostgreSQL or Redis is not reachable
check-services: $(STAMP)
	bash scripts/ensure-system-packages.sh libfaketime chromium
	$(BIN)/python -m tests.services

## lint: ruff (lint + format check) and mypy, configured in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: set up if needed, lint and type-check, then run the whole suite against real PostgreSQL and Redis
test: lint check-services
	$(BIN)/python -m pytest

## bench: the whole engine at K monitors (BENCH_SIZES=100,500,1000,2000, BENCH_SECONDS=20)
bench: $(STAMP) check-services
	$(BIN)/python -m bench.engine

## bench-routeros: K streams over one router connection (K = 100, 1000, 5000)
bench-routeros: $(STAMP)
	$(BIN)/python -m bench.routeros_streams

clean:
	rm -rf $(VENV) .pytest_cache var *.egg-info

## demo: simulator + schema + seeded customers + worker + beat + read-only Flower, then a live tail
demo: $(STAMP)
	bash scripts/demo.sh
