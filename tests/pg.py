"""Throw-away PostgreSQL schemas migrated to head, one per test (or per module).

    with migrated_schema() as url:      # a SQLAlchemy URL string pinned to the schema
        engine = make_engine(url)

The URL carries `options=-csearch_path=<schema>`, so anything given it (a Celery
worker subprocess, the import CLI) lands in the same schema without knowing
about it. The schema is dropped with CASCADE afterwards, even on failure.
Fixtures: `pg_url` (per test), `pg_module_url` (per module), `pg_engine`, `pg_session`.
Use them from a conftest: `from tests.pg import pg_url, pg_engine  # noqa: F401`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from models.db import make_engine, session_factory
from models.migrate import upgrade
from tests.services import TEST_DATABASE_URL


def schema_url(schema: str, base_url: str = TEST_DATABASE_URL) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def migrated_schema(
    base_url: str = TEST_DATABASE_URL, *, prefix: str = "t", migrate: bool = True
) -> Iterator[str]:
    """Create a fresh schema in the test database, migrate it, yield its URL, drop it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = schema_url(schema, base_url)
        try:
            if migrate:
                upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                # Sessions still open elsewhere (a worker) must not block the drop.
                conn.execute(text("SET lock_timeout = '10s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with migrated_schema() as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    with migrated_schema() as url:
        yield url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=2, max_overflow=2)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def pg_session(pg_engine: Engine) -> Iterator[Session]:
    session = session_factory(pg_engine)()
    try:
        yield session
    finally:
        session.close()
