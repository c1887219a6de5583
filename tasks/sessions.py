"""monitor_sessions: the source of truth for which monitors should run.

Every write is one short transaction and, where an attempt is involved, is
conditional on `attempt` (optimistic concurrency): a late or superseded task can
never overwrite the row of the attempt that replaced it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Update, func, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker

from models import ActualState, Customer, DesiredState, MonitorSession
from models.db import dispose_shared, session_factory, shared_engine

_lock = threading.Lock()
_factory: tuple[Engine, sessionmaker[Session]] | None = None


def _sessionmaker() -> sessionmaker[Session]:
    """Sessions on the process's engine for the current settings (models.db.shared_engine:
    the web process's routes use the same one)."""
    global _factory
    engine = shared_engine()
    with _lock:
        if _factory is None or _factory[0] is not engine:
            if _factory is not None:
                _factory[0].dispose()  # the settings moved to another database: let go of the old one
            _factory = (engine, session_factory(engine))
        return _factory[1]


@contextmanager
def db() -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on error."""
    with _sessionmaker().begin() as session:
        yield session


@contextmanager
def db_autocommit() -> Iterator[Session]:
    """A session whose every statement is its own transaction: no BEGIN, no COMMIT.

    For work that is ONE statement anyway (a conditional UPDATE, a single SELECT): the
    transaction around it cost two more round trips to PostgreSQL, and at a burst of a
    thousand starts each round trip is a wait for the interpreter lock among a thousand
    threads (docs/scaling.md, Starting many monitors at once). The driver's own
    autocommit flag is set for the checkout and cleared before the connection goes back
    to the pool (no round trip either way; SQLAlchemy's isolation_level="AUTOCOMMIT"
    would spend one at check-in resetting the isolation level). Other databases (SQLite
    in tests) get a plain transaction."""
    factory = _sessionmaker()
    engine = shared_engine()
    if engine.dialect.name != "postgresql":
        with factory.begin() as session:
            yield session
        return
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.autocommit = True
        try:
            with factory(bind=connection) as session, session.begin():
                yield session
        finally:
            if not raw.closed:  # an invalidated connection is closed and dropped anyway
                raw.autocommit = False


def dispose() -> None:
    """Close the process's database connections (tests, before their schema is dropped)."""
    global _factory
    with _lock:
        _factory = None
    dispose_shared()


def db_now() -> datetime:
    """The database's clock: what every session timestamp was written with."""
    with db() as s:
        moment = s.scalar(select(func.now()))
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def get(session_id: object) -> MonitorSession | None:
    with db() as s:
        return s.get(MonitorSession, _uuid(session_id))


def open_for_customer(customer_id: object) -> MonitorSession | None:
    with db() as s:
        return s.scalars(
            select(MonitorSession).where(
                MonitorSession.customer_id == _uuid(customer_id),
                MonitorSession.desired_state == DesiredState.RUNNING,
            )
        ).first()


def open_sessions() -> list[MonitorSession]:
    with db() as s:
        return list(
            s.scalars(
                select(MonitorSession)
                .where(MonitorSession.desired_state == DesiredState.RUNNING)
                .order_by(MonitorSession.created_at)
            )
        )


def open_sessions_with_status() -> list[tuple[MonitorSession, str]]:
    """Open sessions, each with its customer's status, in one query (the reconciler's
    pass reads them all every interval)."""
    with db() as s:
        rows = s.execute(
            select(MonitorSession, Customer.status)
            .join(Customer, Customer.id == MonitorSession.customer_id)
            .where(MonitorSession.desired_state == DesiredState.RUNNING)
            .order_by(MonitorSession.created_at)
        ).all()
        return [(row, str(status)) for row, status in rows]


def existing_customers(customer_ids: Iterable[object]) -> set[str]:
    """Which of these customers still exist (ids as text)."""
    wanted = {_uuid(c) for c in customer_ids}
    if not wanted:
        return set()
    with db() as s:
        return {str(c) for c in s.scalars(select(Customer.id).where(Customer.id.in_(wanted)))}


def winding_down() -> list[MonitorSession]:
    """Stopped by request but not yet confirmed stopped by their monitor."""
    with db() as s:
        return list(
            s.scalars(
                select(MonitorSession).where(
                    MonitorSession.desired_state == DesiredState.STOPPED,
                    MonitorSession.actual_state != ActualState.STOPPED,
                )
            )
        )


def set_state(
    session_id: object,
    attempt: int,
    state: ActualState,
    *,
    task: str | None = None,
    started: bool = False,
    only_if_wanted: bool = False,
) -> bool:
    """Record what the current attempt is doing; False if the attempt was superseded
    (or, with only_if_wanted, if the session is no longer desired running)."""
    values: dict[str, object] = {"actual_state": state}
    if task is not None:
        values["task_id"] = task
    if started:
        # The database's clock, like created_at: no host clock decides a session's times.
        values["started_at"] = func.coalesce(MonitorSession.started_at, func.now())
    conditions = [MonitorSession.id == _uuid(session_id), MonitorSession.attempt == attempt]
    if only_if_wanted:
        conditions.append(MonitorSession.desired_state == DesiredState.RUNNING)
    return _changed(update(MonitorSession).where(*conditions).values(**values)) == 1


def next_attempt(session_id: object, current: int, task_id: str, router_id: str | None = None) -> int | None:
    """Claim attempt current+1 (run as Celery task `task_id`) for a restart; None if
    someone else moved it first. `router_id`: where the customer points now (its lease
    is taken there), when it was re-pointed since the last attempt."""
    values: dict[str, object] = {
        "attempt": current + 1,
        "actual_state": ActualState.PENDING,
        "task_id": task_id,
    }
    if router_id is not None:
        values["router_id"] = router_id
    claimed = _changed(
        update(MonitorSession)
        .where(
            MonitorSession.id == _uuid(session_id),
            MonitorSession.attempt == current,
            MonitorSession.desired_state == DesiredState.RUNNING,
        )
        .values(**values)
    )
    return current + 1 if claimed == 1 else None


def request_stop(session_id: object, reason: str) -> bool:
    """desired=stopped (frees the customer's open-session slot at once); True if it was open."""
    stopping = _changed(
        update(MonitorSession)
        .where(MonitorSession.id == _uuid(session_id), MonitorSession.desired_state == DesiredState.RUNNING)
        .values(desired_state=DesiredState.STOPPED, actual_state=ActualState.STOPPING, stop_reason=reason)
    )
    return stopping == 1


@dataclass(frozen=True)
class Closed:
    """A session row as close() left it (times on the database's clock)."""

    session_id: uuid.UUID
    customer_id: uuid.UUID
    stop_reason: str
    started_at: datetime | None  # None: no attempt ever ran
    stopped_at: datetime


def close(
    session_id: object,
    reason: str,
    attempt: int | None = None,
    on_close: Callable[[Session, Closed], None] | None = None,
) -> str | None:
    """Final state: stopped. The first reason recorded wins (a stop request's, say,
    over the revoke that came with it); returns it, or None if nothing was closed.
    `on_close` runs in the same transaction once the row is closed (the session's
    report, tasks/session_reports.py): both are written, or neither."""
    conditions = [MonitorSession.id == _uuid(session_id), MonitorSession.actual_state != ActualState.STOPPED]
    if attempt is not None:
        conditions.append(MonitorSession.attempt == attempt)
    with db() as s:
        row = s.execute(
            update(MonitorSession)
            .where(*conditions)
            .values(
                desired_state=DesiredState.STOPPED,
                actual_state=ActualState.STOPPED,
                stopped_at=func.now(),
                stop_reason=func.coalesce(MonitorSession.stop_reason, reason),
            )
            .returning(
                MonitorSession.stop_reason,
                MonitorSession.customer_id,
                MonitorSession.started_at,
                MonitorSession.stopped_at,
            )
        ).one_or_none()
        if row is None:
            return None
        stop_reason = str(row.stop_reason)
        if on_close is not None:
            started = None if row.started_at is None else _aware(row.started_at)
            closed = Closed(_uuid(session_id), row.customer_id, stop_reason, started, _aware(row.stopped_at))
            on_close(s, closed)
        return stop_reason


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _changed(statement: Update) -> int:
    """Run one UPDATE in its own transaction; the number of rows it changed."""
    with db_autocommit() as s:
        # On the session's connection, as Core: the ORM's bulk-update handling costs CPU
        # per call and would synchronise no loaded objects (the session is new).
        result = cast(CursorResult[Any], s.connection().execute(statement))
        return result.rowcount


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
