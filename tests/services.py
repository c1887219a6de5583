"""The real services the suite needs, and a clear failure when one is missing.

Run as `python -m tests.services` (the Makefile does, before pytest) and from
conftest at session start: the suite never skips because a service is down.
"""

from __future__ import annotations

import os
import socket
import sys

from harness.pg import BASE_DATABASE_URL


def _redis_url_for_this_process() -> str:
    """TEST_REDIS_URL, one database down per pytest-xdist worker (gw0 keeps it, gw1 takes
    the next lower...): the suite flushes its database, so parallel workers must not
    share one. PostgreSQL needs nothing: every test module makes its own schema."""
    base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return base
    head, _, db = base.rpartition("/")
    return f"{head}/{int(db) - int(worker[2:])}"


TEST_REDIS_URL = _redis_url_for_this_process()


def missing_services() -> list[str]:
    """A message for each service that cannot be reached; empty when all are up."""
    problems: list[str] = []
    try:
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(BASE_DATABASE_URL)
        conn = psycopg2.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password or None,
            dbname=url.database,
            connect_timeout=3,
        )
        conn.close()
    except Exception as exc:  # any failure here means "not usable"; say why
        problems.append(
            f"PostgreSQL is not reachable at {url.host}:{url.port or 5432} "
            f"(database {url.database!r}): {str(exc).strip().splitlines()[0]}"
        )
    try:
        import redis

        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        problems.append(f"Redis is not reachable at {TEST_REDIS_URL}: {exc}")
    return problems


def main() -> int:
    problems = missing_services()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print(
            "error: the test suite needs a running PostgreSQL (127.0.0.1:5432, trust auth, "
            "database 'test') and Redis (127.0.0.1:6379); set TEST_DATABASE_URL / "
            "TEST_REDIS_URL to point elsewhere.",
            file=sys.stderr,
        )
        return 2
    print(f"services ok: {socket.gethostname()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
