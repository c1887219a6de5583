"""Suite-wide set-up and the fixtures more than one test package uses.

- the real services must be there, or the run fails loudly;
- `redis_client`: a clean test Redis database per test;
- `engine_factory`: one module's monitoring engine (tests/tasks/engine.py): real
  Celery workers and beat, the simulator, a migrated schema and seeded customers.

Helpers live in modules named for what they hold (tests/tasks/streams.py,
tests/web/responses.py...), never in a conftest: nothing imports a conftest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url

from harness.pg import migrated_schema
from harness.seed import ROUTER_PASSWORD, apply_env, seed_customers
from settings import get_settings

# The helper modules assert too (assert_error, session_row...): rewritten as pytest
# rewrites test modules and conftests, a failing helper shows the values it compared.
# Registered before the first of them is imported.
pytest.register_assert_rewrite("tests.tasks", "tests.web", "tests.models", "tests.routeros")

from tests.services import TEST_REDIS_URL, missing_services  # noqa: E402

# Sets CELERY_ENV in this process's environment, before any test module imports the Celery app.
from tests.tasks.engine import BASE_ENV, CELERY_ENV, Engine, point_app_at  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = missing_services()
    if problems:
        pytest.exit("required services are down:\n  " + "\n  ".join(problems), returncode=2)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throw-away PostgreSQL schema migrated to head, per test (harness/pg.py)."""
    with migrated_schema() as url:
        yield url


@pytest.fixture
def database(pg_url: str) -> Iterator[str]:
    """This process's settings and engine pointed at a throw-away migrated schema (no
    workers): for code that reads the database through tasks.sessions."""
    from tasks import sessions

    saved = dict(os.environ)
    apply_env({"DATABASE_URL": pg_url, "ENV_FILE": "/nonexistent"})
    try:
        yield pg_url
    finally:
        sessions.dispose()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


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
            "the Celery app was configured before tests/tasks/engine.py set REDIS_URL"
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
