# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: dev lock test lint demo bench bench-naive chaos bench-routeros bench-queues bench-router bench-ping bench-alerts bench-affinity soak bench-search bench-compare check-services clean

DEV_LOCK := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
UV_COMPILE = $(BIN)/uv pip compile --generate-hashes --universal --python-version 3.11 --quiet

# Every distribution comes from the lock, pinned and hash-checked, so a clone installs the
# same versions on any day; the project itself is then installed without its dependencies
# and built by the locked setuptools (no build isolation: nothing unpinned is fetched).
$(STAMP): $(DEV_LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

## dev: create .venv and install the project with its test extras from requirements/dev.lock
dev: $(STAMP)

# The dashboard's checker: TypeScript and uPlot's types, pinned and hash-checked by
# package-lock.json, installed into node_modules/ (npm ci; no install scripts run). Debian's
# nodejs and npm are installed only where no npm is found: a Node from elsewhere brings its
# own npm, which Debian's package would conflict with.
$(NODE_STAMP): package.json package-lock.json
	command -v npm >/dev/null 2>&1 || bash scripts/ensure-system-packages.sh nodejs npm
	npm ci --ignore-scripts --no-audit --no-fund
	touch $(NODE_STAMP)

## lock: regenerate the locks from pyproject.toml's ranges (dev.lock: with the test extra and tools; runtime.lock, the image's: its subset at the same versions); then make test, and commit the locks on their own
lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml requirements/dev.in --extra test -o $(DEV_LOCK)
	$(UV_COMPILE) pyproject.toml requirements/build.in -c $(DEV_LOCK) -o $(RUNTIME_LOCK)
	@echo "locks regenerated: run make test, then commit requirements/ on its own"

## check-services: install missing system packages the tests use (libfaketime; chromium for the dashboard's browser tests), fail clearly when PostgreSQL or Redis is not reachable
check-services: $(STAMP)
	bash scripts/ensure-system-packages.sh libfaketime chromium
	$(BIN)/python -m tests.services

## lint: ruff (lint + format check) and mypy, configured in pyproject.toml; tsc on the dashboard's JavaScript (tsconfig.json)
lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	node_modules/.bin/tsc -p tsconfig.json

## test: set up if needed, lint and type-check, then run the whole suite against real PostgreSQL and Redis (three workers; then the modules marked quiet, alone)
test: lint check-services
	$(BIN)/python -m pytest -m "not quiet"
	$(BIN)/python -m pytest -m quiet -n 0

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

## bench-queues: K hotspot and static-IP (queue) monitors on one router: router commands/s, worker CPU (BENCH_QUEUE_SIZES=500)
bench-queues: $(STAMP) check-services
	$(BIN)/python -m bench.queues

## bench-router: the router watch on one router of 2,000 PPPoE + 500 queue customers (commands/s, CPU, memory, last reply -> top frame on /ws) beside one monitor per customer
bench-router: $(STAMP) check-services
	$(BIN)/python -m bench.router

## bench-ping: K=1,000 monitors with the router-side ping off, then on (worker CPU, router -> WebSocket p99), and stop -> session report (BENCH_PING_SIZE)
bench-ping: $(STAMP) check-services
	$(BIN)/python -m bench.ping

## bench-alerts: alerts on one router of 2,000 PPPoE customers: saturation -> webhook latency, evaluation CPU (ALERTS on vs off), 1,000 alerts at once to a receiver (BENCH_ALERT_SATURATE, BENCH_ALERT_FOR_S, BENCH_ALERT_BURST)
bench-alerts: $(STAMP) check-services
	$(BIN)/python -m bench.alerts

## bench-affinity: router affinity on 4 simulated routers x 100 monitors and 4 hosts x 2 worker processes: API sessions per router vs its cap, kill -9 of a host (recovery vs TTL + reconcile + 5 s, duplicate producers, leaked slots), a host added (monitors moved, new starts on it), worker CPU and RSS (BENCH_AFFINITY_ROUTERS, BENCH_AFFINITY_PER_ROUTER, BENCH_AFFINITY_HOSTS, BENCH_AFFINITY_CAP)
bench-affinity: $(STAMP) check-services
	$(BIN)/python -m bench.affinity

## soak: K monitors for a long time (SOAK_MONITORS=1000, SOAK_SECONDS=3600, SOAK_WINDOW=60): loss per window from the customers' own streams and every WebSocket client, RSS of every process over time with its slope, Redis memory at plateau
soak: $(STAMP) check-services
	$(BIN)/python -m bench.soak

## bench-compare: make bench for the commit BENCH_BASE (default HEAD) and the working tree in one run, alternating (BENCH_ROUNDS=2 each), side by side
bench-compare: $(STAMP) check-services
	$(BIN)/python -m bench.compare

## bench-search: GET /api/customers's query path at 50,000 and 200,000 customers, the code before migration 0010 beside the current (BENCH_SEARCH_SIZES, BENCH_SEARCH_REPEATS)
bench-search: $(STAMP) check-services
	$(BIN)/python -m bench.search

clean:
	rm -rf $(VENV) node_modules .pytest_cache var *.egg-info

## demo: the whole product on this machine (private Redis, SQLite, simulator, web, workers, beat, Flower); Ctrl-C stops it
demo: $(STAMP)
	$(BIN)/python -m scripts.demo
