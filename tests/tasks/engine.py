"""The monitoring engine's world for a test module: its settings and its `Engine`.

Every process of a test module (this pytest process, the workers, beat) gets the
same settings through the environment: the test Redis database as broker and
key space, a throw-away migrated PostgreSQL schema, and TTLs shrunk to seconds.
The `engine_factory` fixture (tests/conftest.py) builds the `Engine`.

Importing this module sets CELERY_ENV in this process's environment: tests/conftest.py
imports it before any test module imports the Celery app.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.services import TEST_REDIS_URL

# Before anything imports the Celery app: celeryconfig reads these once per process,
# and this process (the "web" side that enqueues) must match the workers exactly.
CELERY_ENV = {
    "REDIS_URL": TEST_REDIS_URL,
    "CELERY_VISIBILITY_TIMEOUT": "60",
    "RECONCILE_INTERVAL": "1",
}
os.environ.update(CELERY_ENV)

import redis  # noqa: E402

from harness.workers import CeleryProcess, beat, worker  # noqa: E402

# Shrunk so that hour-scale behaviour shows up in seconds.
BASE_ENV = {
    **CELERY_ENV,
    "MONITOR_LEASE_TTL": "3",
    "MONITOR_RENEW_INTERVAL": "0.5",
    "MONITOR_INTERVAL": "1",
    "MONITOR_MAX_DURATION": "600",
    "MIKROTIK_TIMEOUT": "2",
    "MAX_CONCURRENT_MONITORS": "50",
    "ENABLE_TRAFFIC_MONITOR": "true",
    # On by default in the product; off here so that a module's threads, router commands
    # and stream entries are its monitors' alone. The watch's own tests turn it on.
    "ROUTER_WATCH": "false",
    # Likewise the monitors' ping: a module's router commands and stream entries are its
    # samples' alone. The ping's own tests (test_monitor_ping*.py) turn it on.
    "MONITOR_PING": "false",
    "LOG_LEVEL": "INFO",
    "ENV_FILE": "/nonexistent/.env",
}


def point_app_at(url: str) -> None:
    """Send this process's enqueues (start's apply_async, stop's revoke) to `url`.

    celeryconfig read REDIS_URL once, at the first `import tasks`; a module that runs
    its own redis-server (outage tests) must swap the broker and drop the cached
    connection pools, and swap back when it is done.
    """
    from tasks import app

    app.conf.broker_url = url
    app.conf.result_backend = url
    # Drop only our references: kombu keeps one pool per broker URL in a global
    # registry and hands the same one back when we switch back, so closing it here
    # would leave the next module with "Acquire on closed pool".
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@dataclass
class Engine:
    """One module's world: database, simulator, customers and Celery processes."""

    env: dict[str, str]
    tmp: Path
    sim: Any
    customers: dict[str, dict[str, Any]]  # username -> simulator record + "id"
    redis: redis.Redis
    processes: list[CeleryProcess] = field(default_factory=list)

    def customer_id(self, username: str) -> str:
        return self.customers[username]["id"]

    def usernames(self, service_type: str) -> list[str]:
        return [u for u, c in self.customers.items() if c["service_type"] == service_type]

    def start_worker(
        self,
        queues: str = "monitors",
        concurrency: int = 8,
        name: str | None = None,
        loglevel: str = "INFO",
        **extra_env: str,
    ) -> CeleryProcess:
        proc = worker(
            {**self.env, **extra_env},
            self.tmp,
            queues=queues,
            concurrency=concurrency,
            name=name,
            loglevel=loglevel,
        )
        self.processes.append(proc.start())
        proc.wait_ready()
        return proc

    def start_beat(self, **extra_env: str) -> CeleryProcess:
        proc = beat({**self.env, **extra_env}, self.tmp)
        self.processes.append(proc.start())
        proc.wait_ready()
        return proc

    def hand_over(self, leaving: str, to: str, concurrency: int = 8) -> CeleryProcess:
        """Stop the monitors worker started as `leaving` with SIGTERM (its monitors hand
        over: their next attempts start elsewhere) and start `to` in its place."""
        proc = next(p for p in self.processes if p.name == leaving)
        proc.signal(signal.SIGTERM)
        proc.wait_exit(15.0)
        return self.start_worker("monitors", concurrency=concurrency, name=to)

    def log_of(self, name: str) -> str:
        """The log of the Celery process started under `name`."""
        return next(p for p in self.processes if p.name == name).log()

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()

    def logs(self) -> str:
        """Every process's whole log (for secret checks and failure messages)."""
        return "\n".join(f"===== {p.name}\n{p.log()}" for p in self.processes)
