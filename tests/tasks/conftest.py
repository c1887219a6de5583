"""Fixtures for the monitoring engine: real Redis, PostgreSQL, simulator, Celery processes.

Every process of a test module (this pytest process, the workers, beat) gets the
same settings through the environment: the test Redis database as broker and
key space, a throw-away migrated PostgreSQL schema, and TTLs shrunk to seconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

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
from sqlalchemy.engine import make_url  # noqa: E402

from harness.pg import migrated_schema  # noqa: E402
from harness.polling import wait_for  # noqa: E402
from harness.seed import ROUTER_PASSWORD, apply_env, seed_customers  # noqa: E402
from harness.workers import CeleryProcess, beat, worker  # noqa: E402
from settings import get_settings  # noqa: E402
from tests.tasks.streams import decoded  # noqa: E402

if TYPE_CHECKING:
    from models import MonitorSession

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

    def log_of(self, name: str) -> str:
        """The log of the Celery process started under `name`."""
        return next(p for p in self.processes if p.name == name).log()

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()

    def logs(self) -> str:
        """Every process's whole log (for secret checks and failure messages)."""
        return "\n".join(f"===== {p.name}\n{p.log()}" for p in self.processes)


@pytest.fixture(scope="module")
def engine_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Engine]]:
    """Build the module's Engine once: `engine_factory(pppoe=.., MAX_CONCURRENT_MONITORS=..)`."""
    from routeros.simulator import Simulator, SimulatorConfig
    from tasks import app, runtime, sessions
    from tasks.hub import close_hub

    saved = dict(os.environ)
    built: list[Engine] = []
    stack: list[Any] = []
    moved: list[str] = []  # private Redis URLs this process's app was pointed at

    def build(
        pppoe: int = 30,
        hotspot: int = 3,
        static: int = 3,
        redis_url: str | None = None,
        simulator: dict[str, Any] | None = None,
        database_port: int | None = None,
        **env: str,
    ) -> Engine:
        """`redis_url`: a private redis-server for broker and keys of every process
        (outage tests kill or freeze it); default the shared TEST_REDIS_URL.
        `simulator`: more SimulatorConfig fields (over_limit, pppoe_names...).
        `database_port`: every process reaches PostgreSQL through this local port (a
        test's proxy, tests/pgproxy.py); the schema is made and seeded directly."""
        assert app.conf.broker_url == TEST_REDIS_URL, (
            "the Celery app was configured before tests/tasks/conftest.py set REDIS_URL"
        )
        clash = {k for k in CELERY_ENV if k in env and env[k] != CELERY_ENV[k]}
        assert not clash, f"{clash} must be the same in every process (celeryconfig)"
        sim = Simulator(
            SimulatorConfig(
                **{
                    "pppoe": pppoe,
                    "hotspot": hotspot,
                    "static": static,
                    "password": ROUTER_PASSWORD,
                    "max_sessions": 20,
                    "seed": 7,
                    **(simulator or {}),
                }
            )
        )
        sim.start()
        stack.append(sim)
        schema = migrated_schema(prefix="eng")
        url = schema.__enter__()
        stack.append(schema)
        engine_url = url
        if database_port is not None:
            engine_url = make_url(url).set(port=database_port).render_as_string(hide_password=False)
        values = {**BASE_ENV, **{k: str(v) for k, v in env.items()}, "DATABASE_URL": engine_url}
        if redis_url is not None:
            values["REDIS_URL"] = redis_url
            point_app_at(redis_url)
            moved.append(redis_url)
        apply_env(values)
        client = redis.Redis.from_url(redis_url or TEST_REDIS_URL)
        client.flushdb()
        customers = seed_customers(url, sim)
        eng = Engine(
            env=dict(os.environ),
            tmp=tmp_path_factory.mktemp("celery"),
            sim=sim,
            customers=customers,
            redis=client,
        )
        built.append(eng)
        return eng

    try:
        yield build
    finally:
        for eng in built:
            eng.stop_all()
        close_hub()
        runtime.close()
        sessions.dispose()
        for item in reversed(stack):
            if hasattr(item, "__exit__"):
                item.__exit__(None, None, None)
        for eng in built:
            try:
                eng.redis.flushdb()
            except redis.RedisError:
                pass  # a private server already gone: nothing left to clean
        if moved:
            point_app_at(TEST_REDIS_URL)
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def start_flower(engine: Engine, tmp: Path, user: str, password: str) -> str:
    """A Flower (its HTTP API writable, basic auth) on the engine's broker; its base URL.
    It is stopped with the engine's processes."""
    import httpx

    from harness.process import free_port

    port = free_port()
    env = {**engine.env, "FLOWER_BASIC_AUTH": f"{user}:{password}"}
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    proc = CeleryProcess(
        ["flower", f"--port={port}", "--address=127.0.0.1"], env, tmp / "flower.log", "Visit me", "flower-rw"
    ).start()
    engine.processes.append(proc)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthcheck", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 20.0, what="flower to answer", step=0.1)
    return base


# -- lease and stream helpers ---------------------------------------------------------------


def live_tokens(client: redis.Redis | None = None) -> set[str]:
    """The tokens of every live lease, in `client`'s Redis (default: this process's)."""
    from tasks import runtime
    from tasks.semaphore import Semaphore

    semaphore = runtime.current().semaphore if client is None else Semaphore(client)
    return {h.token for h in semaphore.holders()}


def token(session_id: str, attempt: int) -> str:
    from tasks.lifecycle import Token

    return str(Token(session_id, attempt))


def session_row(session_id: object) -> MonitorSession:
    """The monitor_sessions row of a session the test started (it must exist)."""
    from tasks import sessions

    row = sessions.get(session_id)
    assert row is not None, f"no monitor_sessions row for {session_id}"
    return row


def open_session_row(customer_id: str) -> MonitorSession:
    """The customer's open session row (desired running), which the test expects."""
    from tasks import sessions

    row = sessions.open_for_customer(customer_id)
    assert row is not None, f"no open session for customer {customer_id}"
    return row


def customer_entries(client: redis.Redis, customer_id: str) -> list[dict[str, Any]]:
    from tasks.keys import customer_stream

    return decoded(client.xrange(customer_stream(customer_id)))


Predicate = Callable[[dict[str, Any]], bool]


def matches(**fields: object) -> Predicate:
    """A predicate on decoded entries: every given field has the given value.

    Binds its values when called, so it can be built in a loop (what a lambda's
    `s=session_id` default did, which mypy cannot type)."""
    return lambda entry: all(entry[name] == value for name, value in fields.items())


def wait_entry(
    client: redis.Redis, customer_id: str, predicate: Predicate, timeout: float, message: str
) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for entry in customer_entries(client, customer_id):
            if predicate(entry):
                return entry
        return None

    return wait_for(find, timeout, what=message)


def in_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run target(i) in `count` threads released together; results or exceptions, in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
