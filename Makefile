# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test lint demo bench bench-naive chaos bench-routeros check-services clean

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

## bench: end to end (REST, workers, WebSocket) at K monitors (BENCH_SIZES=100,500,1000,2000, BENCH_SECONDS=20)
bench: $(STAMP) check-services
	$(BIN)/python -m bench.engine

## bench-naive: the naive way (a login per monitor, monitor-traffic =once= every second) beside ours
bench-naive: $(STAMP)
	$(BIN)/python -m bench.naive

## chaos: faults while 200 monitors run and 5 WebSocket clients read (CHAOS_MONITORS, CHAOS_FAULTS)
chaos: $(STAMP) check-services
	$(BIN)/python -m bench.chaos

## bench-routeros: K streams over one router connection (K = 100, 1000, 5000)
bench-routeros: $(STAMP)
	$(BIN)/python -m bench.routeros_streams

clean:
	rm -rf $(VENV) .pytest_cache var *.egg-info

## demo: the whole product on this machine (private Redis, SQLite, simulator, web, workers, beat, Flower); Ctrl-C stops it
demo: $(STAMP)
	$(BIN)/python -m scripts.demo
