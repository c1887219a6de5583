"""Engines and sessions for PostgreSQL (production, tests) and SQLite (embedded demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from settings import get_settings


def make_engine(
    url: str | URL | None = None,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    echo: bool = False,
) -> Engine:
    """An engine for `url` (default: settings' database_url).

    Statement parameters are hidden from errors and logs because rows carry
    passwords. The pool is sized for a threads-pool worker where many short
    transactions run side by side; pre-ping drops connections PostgreSQL closed.
    """
    target = make_url(url if url is not None else get_settings().database_url)
    if target.drivername == "postgresql":
        # SQLAlchemy 2.1 picks psycopg 3 for a bare postgresql://; we ship psycopg2.
        target = target.set(drivername="postgresql+psycopg2")
    common: dict[str, Any] = {"echo": echo, "hide_parameters": True, "pool_pre_ping": True}
    if target.get_backend_name() == "sqlite":
        return _sqlite_engine(target, common)
    return create_engine(
        target,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=30,
        pool_recycle=1800,
        **common,
    )


def _sqlite_engine(target: URL, common: dict[str, Any]) -> Engine:
    database = target.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if in_memory:
        # One shared connection, or every checkout would see a new empty database.
        engine = create_engine(
            target, poolclass=StaticPool, connect_args={"check_same_thread": False}, **common
        )
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(target, connect_args={"check_same_thread": False, "timeout": 30}, **common)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # SQLite ignores foreign keys unless asked, per connection.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (handed to other threads/tasks)."""
    return sessionmaker(bind=engine if engine is not None else make_engine(), expire_on_commit=False)
