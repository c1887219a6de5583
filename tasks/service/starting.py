"""start(): one monitor, and what the bulk start shares with it: the session row, the
reservation, and the one mapping of refusals to the service's errors.

Order, so that nothing is ever half-started:
  resolve (data-layer errors pass through) -> insert the session row (the partial
  unique index makes concurrent starts for one customer single-flight: the losers
  get the winner's row back) -> reserve the lease of attempt 1 -> launch the message.
A start with ping=false first leaves its choice in Redis under the new session's id
(tasks/keys.py session_ping), where every attempt of the session reads it: no column,
and nothing to undo (a key of a session that never started expires unread).
Any failure after the insert is undone: the reservation is released and the row
closed with the reason, so a retry starts clean.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import IntegrityError

from models import ActualState, DesiredState, MonitorSession
from models.resolution import MonitorTarget
from settings import get_settings
from tasks import keys, lifecycle, runtime, sessions
from tasks.lifecycle import FIRST_ATTEMPT, Token
from tasks.message import PING_OFF
from tasks.semaphore import AlreadyMonitored, CapacityError
from tasks.semaphore import StorageFull as SemaphoreStorageFull
from tasks.service.errors import (
    DATABASE_ERRORS,
    CapacityExceeded,
    DatabaseUnavailable,
    MonitoringDisabled,
    StartFailed,
    StorageFull,
)
from tasks.service.info import SessionInfo, session_info
from tasks.targets import resolve_customer


def start(customer_id: object, requested_by: str | None = None, ping: bool = True) -> SessionInfo:
    """Start monitoring a customer, or return its open session (idempotent; an open
    session keeps its own ping choice). `ping=False`: this session runs without the
    router-side ping whatever MONITOR_PING says."""
    try:
        return _start(customer_id, requested_by, ping)
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(
            f"cannot start a monitor: the database is unavailable ({type(exc).__name__})"
        ) from exc


def _start(customer_id: object, requested_by: str | None, ping: bool) -> SessionInfo:
    if not get_settings().enable_traffic_monitor:
        raise MonitoringDisabled()
    target = resolve_customer(customer_id)
    existing = sessions.open_for_customer(target.customer_id)
    if existing is not None:
        return session_info(existing, created=False)
    token = Token(str(uuid.uuid4()), FIRST_ATTEMPT)
    if not ping:
        remember_ping_off([token.session_id])
    try:
        with sessions.db() as s:
            row = new_session_row(target, token, requested_by)
            s.add(row)
            s.flush()
            s.refresh(row)  # server-side created_at, while the session is still open
    except IntegrityError:
        # Lost the single-flight race: the partial unique index kept the winner's row.
        existing = sessions.open_for_customer(target.customer_id)
        if existing is None:
            raise
        return session_info(existing, created=False)
    try:
        fence = reserve(token, target)
    except AlreadyMonitored as exc:
        if Token.parse(exc.owner_token).session_id == token.session_id:
            # The reconciler already launched this very session: nothing to undo.
            return session_info(sessions.get(row.id) or row, created=True)
        _undo(row, token, f"not started: {exc}")
        raise
    except (SemaphoreStorageFull, CapacityError) as exc:
        _undo(row, token, f"not started: {exc}")
        raise refusal(exc, target) from None
    except BaseException as exc:
        _undo(row, token, f"not started: {type(exc).__name__}")
        raise
    try:
        # Before the launch: afterwards the run may already have said "running".
        sessions.set_state(row.id, token.attempt, ActualState.STARTING)
        lifecycle.launch(token, fence, target, enqueued_ms=runtime.current().semaphore.now_ms())
    except BaseException as exc:
        error = launch_failure(exc)
        # Redis may have filled up between the reservation and the enqueue (which it refuses).
        reason = lifecycle.REDIS_OUT_OF_MEMORY if isinstance(error, StorageFull) else type(exc).__name__
        _undo(row, token, f"not started: {reason}")
        raise error from exc
    return session_info(sessions.get(row.id) or row, created=True)


def new_session_row(target: MonitorTarget, token: Token, requested_by: str | None) -> MonitorSession:
    """The row of a session about to start: desired running, actual pending, attempt 1."""
    return MonitorSession(
        id=uuid.UUID(token.session_id),
        customer_id=target.customer_id,
        router_id=target.router_id,
        desired_state=DesiredState.RUNNING,
        actual_state=ActualState.PENDING,
        attempt=token.attempt,
        task_id=token.task_id,
        requested_by=requested_by,
        max_duration_s=int(get_settings().monitor_max_duration),
    )


def remember_ping_off(session_ids: Iterable[str]) -> None:
    """These sessions (about to be inserted) run without ping, every attempt of them: the
    key outlives the longest session (max duration from its creation) and the stop key."""
    settings = get_settings()
    ttl_ms = int((settings.monitor_max_duration + lifecycle.stop_key_ttl(settings)) * 1000)
    with runtime.current().redis.pipeline(transaction=False) as pipe:
        for session_id in session_ids:
            pipe.set(keys.session_ping(session_id), PING_OFF, px=ttl_ms)
        pipe.execute()


def reserve(token: Token, target: MonitorTarget) -> int:
    """The lease of the session's first attempt, its fence. Raises the semaphore's refusal
    (`refusal` says what a start raises for it)."""
    settings = get_settings()
    sem = runtime.current().semaphore
    limits: dict[str, Any] = {
        "global_limit": settings.max_concurrent_monitors,
        "router_limit": target.max_monitors,
        "ttl": settings.monitor_lease_ttl,
    }
    try:
        return sem.acquire(str(token), target.customer_id, target.router_id, **limits)
    except AlreadyMonitored as exc:
        # The owner can only be an attempt of an older session that is winding down
        # (ours is the one open session): take over, which fences it out at once.
        old = sessions.get(Token.parse(exc.owner_token).session_id)
        if old is not None and old.desired_state == DesiredState.RUNNING:
            raise
        return sem.takeover(
            str(token), target.customer_id, target.router_id, previous_token=exc.owner_token, **limits
        )


def retry_after() -> int:
    """Seconds after which a refused start may succeed: a lease's TTL frees a slot by then."""
    return max(1, int(get_settings().monitor_lease_ttl))


def refusal(error: Exception, target: MonitorTarget) -> Exception:
    """What a start raises for a semaphore refusal (any other error is itself)."""
    if isinstance(error, SemaphoreStorageFull):
        return StorageFull(str(error), retry_after=retry_after())
    if isinstance(error, CapacityError):
        return CapacityExceeded(
            error.scope,
            error.cap,
            error.in_use,
            retry_after=retry_after(),
            router_id=target.router_id,
            router_name=target.router.name,
        )
    return error


def launch_failure(exc: BaseException) -> Exception:
    """What a start raises when its message could not be sent: StorageFull when Redis
    refused it for want of memory, else StartFailed."""
    if lifecycle.is_redis_out_of_memory(exc):
        return StorageFull(lifecycle.REDIS_OUT_OF_MEMORY, retry_after=retry_after())
    return StartFailed(f"could not start the monitor: {type(exc).__name__}")


def _undo(row: MonitorSession, token: Token, reason: str) -> None:
    try:
        runtime.current().semaphore.release(str(token), row.customer_id, row.router_id)
    finally:
        sessions.close(row.id, reason)
