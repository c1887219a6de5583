"""Engines and sessions for PostgreSQL (production, tests) and SQLite (embedded demo)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from models import pg_wait
from settings import Settings, get_settings

# Seconds to wait for PostgreSQL to accept a connection: an unreachable database
# fails a command or a request instead of hanging on the kernel's TCP timeout.
CONNECT_TIMEOUT = 10
# The client gives up on a round trip this long after the server would have cancelled
# the statement: a slow statement fails with the server's words, a stalled server or
# network with the client's (models/pg_wait.py).
CLIENT_TIMEOUT_MARGIN = 2.0


def make_engine(
    url: str | URL | None = None,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    statement_timeout: float | None = None,
    connect_timeout: int = CONNECT_TIMEOUT,
    echo: bool = False,
    settings: Settings | None = None,
) -> Engine:
    """An engine for `url` (default: settings' database_url).

    PostgreSQL defaults come from settings, the seed's variables: the pool keeps
    DB_MAX_IDLE_CONNS connections and opens up to DB_MAX_OPEN_CONNS in all
    (pool_size = idle, max_overflow = open - idle), and the server cancels any
    statement after DB_STATEMENT_TIMEOUT seconds (a lock wait after half of it), so
    no query can hang a worker thread forever; the client gives up a little later
    (a stalled server or network cannot cancel anything), and a checkout waits for a
    pooled connection no longer than that. A keyword given here wins over its
    setting; statement_timeout=0 means no limit (migrations).

    Statement parameters are hidden from errors and logs because rows carry
    passwords; pre-ping drops connections PostgreSQL closed.
    """
    settings = settings or get_settings()
    target = make_url(url if url is not None else settings.database_url)
    if target.drivername == "postgresql":
        # SQLAlchemy 2.1 picks psycopg 3 for a bare postgresql://; we ship psycopg2.
        target = target.set(drivername="postgresql+psycopg2")
    common: dict[str, Any] = {"echo": echo, "hide_parameters": True, "pool_pre_ping": True}
    if target.get_backend_name() == "sqlite":
        return _sqlite_engine(target, common)
    if pool_size is None:
        pool_size = settings.db_max_idle_conns
    if max_overflow is None:
        max_overflow = settings.db_max_open_conns - settings.db_max_idle_conns
    if statement_timeout is None:
        statement_timeout = settings.db_statement_timeout
    connect_args = _postgresql_connect_args(target, statement_timeout, connect_timeout)
    # Every connect, statement and fetch is bounded on the client too, and so is the
    # wait for a pooled connection: a stalled PostgreSQL makes callers fail within
    # seconds instead of hanging (with no statement timeout, e.g. migrations, neither).
    client_timeout = statement_timeout + CLIENT_TIMEOUT_MARGIN if statement_timeout > 0 else None
    if client_timeout is not None:
        pg_wait.install()
        connect_args["connection_factory"] = pg_wait.timed_connection(
            client_timeout, min(connect_timeout, client_timeout)
        )
    return create_engine(
        target,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=client_timeout or 30,
        pool_recycle=1800,
        connect_args=connect_args,
        **common,
    )


def _postgresql_connect_args(target: URL, statement_timeout: float, connect_timeout: int) -> dict[str, Any]:
    """Server settings for every new connection, merged with what the URL already says.

    connect_args replace the URL's query keys, so the URL's own `options` (such as a
    search_path) are kept in front of ours; a connect_timeout in the URL wins.
    """
    millis = max(0, round(statement_timeout * 1000))
    # A statement stuck behind another's lock for half its budget fails with "lock
    # timeout", which says what happened, instead of a generic statement timeout.
    ours = f"-c statement_timeout={millis} -c lock_timeout={millis // 2}"
    theirs = target.query.get("options", ())
    options = " ".join([theirs] if isinstance(theirs, str) else list(theirs))
    args: dict[str, Any] = {"options": f"{options} {ours}".strip()}
    if "connect_timeout" not in target.query:
        args["connect_timeout"] = connect_timeout
    return args


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


_shared: dict[tuple[str, int, int, float], Engine] = {}
_shared_lock = threading.Lock()


def shared_engine(settings: Settings | None = None) -> Engine:
    """The process's engine for `settings` (default: get_settings()), built once.

    Everything a process does in the database goes through it, so DB_MAX_OPEN_CONNS
    bounds the whole process: in the web process the routes' queries and the service
    functions they call (tasks.sessions), in a worker its runs, state writer and
    reconciler. One engine per database configuration (URL, pool, statement timeout):
    a test app pointed at another database gets its own; `dispose_shared` closes all.
    """
    settings = settings or get_settings()
    key = (
        settings.database_url,
        settings.db_max_idle_conns,
        settings.db_max_open_conns,
        settings.db_statement_timeout,
    )
    with _shared_lock:
        engine = _shared.get(key)
        if engine is None:
            engine = _shared[key] = make_engine(settings=settings)
        return engine


def dispose_shared() -> None:
    """Close the shared engines' connections and forget them (a process's end, or a
    test's before its schema is dropped)."""
    with _shared_lock:
        engines = list(_shared.values())
        _shared.clear()
    for engine in engines:
        engine.dispose()


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (handed to other threads/tasks)."""
    return sessionmaker(bind=engine if engine is not None else make_engine(), expire_on_commit=False)
