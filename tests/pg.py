"""PostgreSQL fixtures on throw-away schemas migrated to head (harness/pg.py).

Fixtures: `pg_url` (per test), `pg_module_url` (per module), `pg_engine`, `pg_session`.
Use them from a conftest: `from tests.pg import pg_url, pg_engine  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from harness.pg import migrated_schema
from models.db import make_engine, session_factory


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
