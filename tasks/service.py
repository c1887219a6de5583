"""What the web layer and the CLI call: start, stop and status of monitors (no HTTP here).

start() order, so that nothing is ever half-started:
  resolve (data-layer errors pass through) -> insert the session row (the partial
  unique index makes concurrent starts for one customer single-flight: the losers
  get the winner's row back) -> reserve the lease of attempt 1 -> launch the message.
Any failure after the insert is undone: the reservation is released and the row
closed with the reason, so a retry starts clean.

Every refusal is a typed error; web/errors.py maps each to one HTTP status.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import selectinload

from models import ActualState, Customer, DesiredState, MonitorSession
from models.resolution import InvalidCustomerId, MonitorTarget, ResolutionError, resolve
from settings import get_settings
from tasks import lifecycle, runtime, sessions
from tasks.app import app
from tasks.lifecycle import FIRST_ATTEMPT, Token
from tasks.semaphore import AlreadyMonitored, CapacityError
from tasks.semaphore import StorageFull as SemaphoreStorageFull
from tasks.targets import meta_for, resolve_customer

log = logging.getLogger(__name__)


class MonitoringDisabled(RuntimeError):
    def __init__(self) -> None:
        super().__init__("traffic monitoring is disabled (ENABLE_TRAFFIC_MONITOR=false)")


class CapacityExceeded(RuntimeError):
    """No free monitor slot. `scope` is "global" or "router" (then `router_id` and
    `router_name` say which router's cap refused); `retry_after` is a hint (s)."""

    def __init__(
        self,
        scope: str,
        cap: int,
        in_use: int,
        retry_after: int,
        router_id: str | None = None,
        router_name: str | None = None,
    ) -> None:
        where = f" on router {router_name!r} ({router_id})" if scope == "router" else ""
        super().__init__(f"{scope} monitor limit reached{where}: {in_use} of {cap} slots in use")
        self.scope = scope
        self.cap = cap
        self.in_use = in_use
        self.retry_after = retry_after
        self.router_id = router_id if scope == "router" else None
        self.router_name = router_name if scope == "router" else None


class NotMonitored(LookupError):
    def __init__(self, customer_id: object) -> None:
        super().__init__(f"customer {customer_id} is not being monitored")
        self.customer_id = str(customer_id)


class StartFailed(RuntimeError):
    """Launching failed; the reservation was released and the session closed."""


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL did not answer (down, stalled past DB_STATEMENT_TIMEOUT, no pooled
    connection free in time): 503. Nothing was half-done."""


# What a database that is down or stalled raises through SQLAlchemy: a connection or
# statement that failed or timed out (models/pg_wait.py), or no pooled connection in time.
DATABASE_ERRORS = (OperationalError, InterfaceError, SQLAlchemyTimeoutError)


class StorageFull(RuntimeError):
    """Redis is out of memory (or within the reserve new monitors leave free): no monitor
    can start until memory is freed (503). Nothing was left behind; `retry_after` (s)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(f"cannot start a monitor: {detail}")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    customer_id: str
    router_id: str
    task_id: str | None
    attempt: int
    desired_state: str
    actual_state: str
    created: bool  # False when start() returned an existing session
    requested_by: str | None
    created_at: str | None
    started_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _info(row: MonitorSession, created: bool) -> SessionInfo:
    return SessionInfo(
        session_id=str(row.id),
        customer_id=str(row.customer_id),
        router_id=row.router_id,
        task_id=row.task_id,
        attempt=row.attempt,
        desired_state=str(row.desired_state),
        actual_state=str(row.actual_state),
        created=created,
        requested_by=row.requested_by,
        created_at=_iso(row.created_at),
        started_at=_iso(row.started_at),
    )


def start(customer_id: object, requested_by: str | None = None) -> SessionInfo:
    """Start monitoring a customer, or return its open session (idempotent)."""
    try:
        return _start(customer_id, requested_by)
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(
            f"cannot start a monitor: the database is unavailable ({type(exc).__name__})"
        ) from exc


def _start(customer_id: object, requested_by: str | None) -> SessionInfo:
    settings = get_settings()
    if not settings.enable_traffic_monitor:
        raise MonitoringDisabled()
    target = resolve_customer(customer_id)
    existing = sessions.open_for_customer(target.customer_id)
    if existing is not None:
        return _info(existing, created=False)
    session_id = uuid.uuid4()
    token = Token(str(session_id), FIRST_ATTEMPT)
    try:
        with sessions.db() as s:
            row = MonitorSession(
                id=session_id,
                customer_id=target.customer_id,
                router_id=target.router_id,
                desired_state=DesiredState.RUNNING,
                actual_state=ActualState.PENDING,
                attempt=token.attempt,
                task_id=token.task_id,
                requested_by=requested_by,
                max_duration_s=int(settings.monitor_max_duration),
            )
            s.add(row)
            s.flush()
            s.refresh(row)  # server-side created_at, while the session is still open
    except IntegrityError:
        # Lost the single-flight race: the partial unique index kept the winner's row.
        existing = sessions.open_for_customer(target.customer_id)
        if existing is None:
            raise
        return _info(existing, created=False)
    try:
        fence = _reserve(token, target)
    except AlreadyMonitored as exc:
        if Token.parse(exc.owner_token).session_id == token.session_id:
            # The reconciler already launched this very session: nothing to undo.
            return _info(sessions.get(row.id) or row, created=True)
        _undo(row, token, f"not started: {exc}")
        raise
    except SemaphoreStorageFull as exc:
        _undo(row, token, f"not started: {exc}")
        raise StorageFull(str(exc), retry_after=max(1, int(settings.monitor_lease_ttl))) from None
    except CapacityError as exc:
        _undo(row, token, f"not started: {exc}")
        raise CapacityExceeded(
            exc.scope,
            exc.cap,
            exc.in_use,
            retry_after=max(1, int(settings.monitor_lease_ttl)),
            router_id=target.router_id,
            router_name=target.router.name,
        ) from None
    except BaseException as exc:
        _undo(row, token, f"not started: {type(exc).__name__}")
        raise
    try:
        # Before the launch: afterwards the run may already have said "running".
        sessions.set_state(row.id, token.attempt, ActualState.STARTING)
        lifecycle.launch(token, fence, meta_for(target), enqueued_ms=runtime.current().semaphore.now_ms())
    except BaseException as exc:
        if lifecycle.is_redis_out_of_memory(exc):
            # Redis filled up between the reservation and the enqueue (which it refuses).
            _undo(row, token, f"not started: {lifecycle.REDIS_OUT_OF_MEMORY}")
            retry_after = max(1, int(settings.monitor_lease_ttl))
            raise StorageFull(lifecycle.REDIS_OUT_OF_MEMORY, retry_after=retry_after) from exc
        _undo(row, token, f"not started: {type(exc).__name__}")
        raise StartFailed(f"could not start the monitor: {type(exc).__name__}") from exc
    return _info(sessions.get(row.id) or row, created=True)


@dataclass(frozen=True)
class StartResult:
    """One customer's outcome in a bulk start: `info` when started or already monitored,
    `error` (what `start` would have raised for it) when refused."""

    customer_id: str
    info: SessionInfo | None
    error: Exception | None = None

    @property
    def status(self) -> str:
        if self.info is None:
            return "refused"
        return "started" if self.info.created else "already"


# Customers per bulk start (one request): the web layer enforces it for its callers.
MAX_BULK_START = 1000


def start_many(customer_ids: Sequence[object], requested_by: str | None = None) -> list[StartResult]:
    """Start many monitors at once, each exactly as `start` would (same rules, same
    errors, per customer), in a few round trips instead of a dozen per customer.

    One transaction resolves every customer and finds their open sessions; one INSERT
    writes the new rows (the partial unique index still decides a race: on a conflict
    the batch falls back to `start` one by one); one Redis pipeline reserves the leases
    (in order, so a cap reached half-way refuses the rest, as it would one by one); one
    UPDATE marks them starting; the messages go out on one broker connection (one Celery
    task per monitor, as ever). A refusal after the insert is undone for that customer
    only. Results come back in the order asked, one per id (a repeated id gets the same
    result). Raises only what refuses the whole batch: MonitoringDisabled, and
    DatabaseUnavailable when PostgreSQL does not answer.
    """
    settings = get_settings()
    if not settings.enable_traffic_monitor:
        raise MonitoringDisabled()
    if len(customer_ids) > MAX_BULK_START:
        raise ValueError(f"at most {MAX_BULK_START} customers per bulk start")
    try:
        results = _start_many(customer_ids, requested_by)
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(
            f"cannot start monitors: the database is unavailable ({type(exc).__name__})"
        ) from exc
    return [results[_key(c)] for c in customer_ids]


def _key(customer_id: object) -> str:
    try:
        return str(uuid.UUID(str(customer_id).strip()))
    except ValueError:
        return f"invalid:{customer_id}"


def _start_many(customer_ids: Sequence[object], requested_by: str | None) -> dict[str, StartResult]:
    settings = get_settings()
    results: dict[str, StartResult] = {}
    wanted: list[uuid.UUID] = []
    seen: set[str] = set()
    for raw in customer_ids:
        key = _key(raw)
        if key in seen:
            continue
        seen.add(key)
        if key.startswith("invalid:"):
            results[key] = StartResult(str(raw), None, InvalidCustomerId(raw))
        else:
            wanted.append(uuid.UUID(key))
    targets: dict[str, MonitorTarget] = {}
    with sessions.db() as s:
        # Loaded once: resolve() then finds each customer, package and router in the session.
        s.scalars(
            select(Customer).where(Customer.id.in_(wanted)).options(selectinload(Customer.package))
        ).all()
        existing = {
            str(row.customer_id): row
            for row in s.scalars(
                select(MonitorSession).where(
                    MonitorSession.customer_id.in_(wanted),
                    MonitorSession.desired_state == DesiredState.RUNNING,
                )
            )
        }
        for cid in wanted:
            key = str(cid)
            if key in existing:
                results[key] = StartResult(key, _info(existing[key], created=False))
                continue
            try:
                targets[key] = resolve(s, cid)
            except ResolutionError as exc:
                results[key] = StartResult(key, None, exc)
    if not targets:
        return results
    tokens = {key: Token(str(uuid.uuid4()), FIRST_ATTEMPT) for key in targets}
    rows = [
        MonitorSession(
            id=uuid.UUID(tokens[key].session_id),
            customer_id=target.customer_id,
            router_id=target.router_id,
            desired_state=DesiredState.RUNNING,
            actual_state=ActualState.PENDING,
            attempt=FIRST_ATTEMPT,
            task_id=tokens[key].task_id,
            requested_by=requested_by,
            max_duration_s=int(settings.monitor_max_duration),
        )
        for key, target in targets.items()
    ]
    try:
        with sessions.db() as s:
            s.add_all(rows)
    except IntegrityError:
        # A concurrent start of one of them won the single-flight race: one by one, each
        # finds the winner's row or starts (rare, and exactly what `start` does).
        for key in targets:
            try:
                results[key] = StartResult(key, start(key, requested_by))
            except Exception as exc:
                results[key] = StartResult(key, None, exc)
        return results
    sem = runtime.current().semaphore
    keys_in_order = list(targets)
    try:
        fences = sem.acquire_many(
            [
                (str(tokens[k]), targets[k].customer_id, targets[k].router_id, targets[k].max_monitors)
                for k in keys_in_order
            ],
            global_limit=settings.max_concurrent_monitors,
            ttl=settings.monitor_lease_ttl,
        )
    except BaseException as exc:
        for key in keys_in_order:
            _undo_quietly(key, tokens[key], targets[key], f"not started: {type(exc).__name__}")
        raise
    reserved: dict[str, int] = {}
    for key, fence in zip(keys_in_order, fences):
        if isinstance(fence, int):
            reserved[key] = fence
            continue
        if isinstance(fence, AlreadyMonitored):
            # An old session winding down may be taken over: the single path decides.
            try:
                reserved[key] = _reserve(tokens[key], targets[key])
                continue
            except Exception as exc:
                fence = exc  # type: ignore[assignment]  # refused after all: undone below
        results[key] = StartResult(key, None, _refusal(fence, targets[key]))
        _undo_quietly(key, tokens[key], targets[key], f"not started: {fence}")
    if reserved:
        with sessions.db() as s:
            s.execute(
                update(MonitorSession)
                .where(
                    MonitorSession.id.in_([uuid.UUID(tokens[k].session_id) for k in reserved]),
                    MonitorSession.attempt == FIRST_ATTEMPT,
                )
                .values(actual_state=ActualState.STARTING)
            )
        now_ms = sem.now_ms()
        with app.producer_or_acquire() as producer:
            for key, fence in reserved.items():
                try:
                    lifecycle.launch(tokens[key], fence, meta_for(targets[key]), now_ms, producer=producer)
                except Exception as exc:
                    if lifecycle.is_redis_out_of_memory(exc):
                        error: Exception = StorageFull(
                            lifecycle.REDIS_OUT_OF_MEMORY, retry_after=max(1, int(settings.monitor_lease_ttl))
                        )
                    else:
                        error = StartFailed(f"could not start the monitor: {type(exc).__name__}")
                    results[key] = StartResult(key, None, error)
                    _undo_quietly(key, tokens[key], targets[key], f"not started: {type(exc).__name__}")
        launched = [k for k in reserved if k not in results]
        with sessions.db() as s:
            fresh = {
                str(row.customer_id): row
                for row in s.scalars(
                    select(MonitorSession).where(
                        MonitorSession.id.in_([uuid.UUID(tokens[k].session_id) for k in launched])
                    )
                )
            }
        for key in launched:
            results[key] = StartResult(key, _info(fresh[key], created=True))
    return results


def _refusal(error: Exception, target: MonitorTarget) -> Exception:
    """What `start` raises for a semaphore refusal."""
    settings = get_settings()
    retry_after = max(1, int(settings.monitor_lease_ttl))
    if isinstance(error, SemaphoreStorageFull):
        return StorageFull(str(error), retry_after=retry_after)
    if isinstance(error, CapacityError):
        return CapacityExceeded(
            error.scope,
            error.cap,
            error.in_use,
            retry_after=retry_after,
            router_id=target.router_id,
            router_name=target.router.name,
        )
    return error


def _undo_quietly(key: str, token: Token, target: MonitorTarget, reason: str) -> None:
    try:
        runtime.current().semaphore.release(str(token), target.customer_id, target.router_id)
    except Exception:
        log.exception("bulk start: could not release the reservation of %s (its TTL will)", key)
    try:
        sessions.close(token.session_id, reason)
    except Exception:
        log.exception("bulk start: could not close session %s", token.session_id)


def _reserve(token: Token, target: MonitorTarget) -> int:
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


def _undo(row: MonitorSession, token: Token, reason: str) -> None:
    try:
        runtime.current().semaphore.release(str(token), row.customer_id, row.router_id)
    finally:
        sessions.close(row.id, reason)


def stop(customer_id: object, requested_by: str | None = None) -> SessionInfo:
    """Stop a customer's monitor: stop key, revoke (never terminate), desired=stopped.

    The stop key comes first: it alone stops a running monitor (its keeper polls it
    and the run ends itself, publishing `stopped`), and until the row says stopped it
    keeps the reconciler from restarting the session. So a stop works while PostgreSQL
    is away: the monitor is found through its lease in Redis, stops within a second,
    and its row is closed when PostgreSQL answers again (by the monitor's state writer
    or the reconciler). If Redis refuses the stop key, nothing was changed anywhere.
    A session that has not started yet is finished here: its reservation released,
    its row closed, `stopped` published.
    """
    target_id = _customer_uuid(customer_id)
    reason = f"stopped by {requested_by}" if requested_by else "stop requested"
    rt = runtime.current()
    try:
        row = sessions.open_for_customer(target_id)
    except DATABASE_ERRORS as exc:
        return _stop_without_database(target_id, reason, requested_by, exc)
    if row is None:
        raise NotMonitored(target_id)
    lifecycle.request_stop(rt.redis, row.id, reason)
    if row.task_id:
        # Without terminate: the threads pool cannot kill, and the flag alone makes
        # a queued message be discarded and a running loop notice.
        app.control.revoke(row.task_id)
    try:
        sessions.request_stop(row.id, reason)
        if row.actual_state in (ActualState.PENDING, ActualState.STARTING):
            rt.semaphore.release(str(Token.of(row)), row.customer_id, row.router_id)
            if sessions.close(row.id, reason, attempt=row.attempt):
                lifecycle.publish_stopped(rt.publisher, row, reason)
        return _info(sessions.get(row.id) or row, created=False)
    except DATABASE_ERRORS as exc:
        log.warning("stop of session %s: row not written (%s); the stop key carries it", row.id, exc)
        return replace(
            _info(row, created=False),
            desired_state=str(DesiredState.STOPPED),
            actual_state=str(ActualState.STOPPING),
        )


def _stop_without_database(
    customer_id: str, reason: str, requested_by: str | None, exc: Exception
) -> SessionInfo:
    """PostgreSQL is away: stop the customer's live lease holder through Redis alone."""
    rt = runtime.current()
    owner = rt.semaphore.owner_of(customer_id)
    if owner is None:
        raise DatabaseUnavailable(
            f"cannot stop the monitor of customer {customer_id}: the database is unavailable "
            f"({type(exc).__name__}) and Redis holds no lease for it"
        ) from exc
    token = Token.parse(owner.token)
    lifecycle.request_stop(rt.redis, token.session_id, reason)
    app.control.revoke(token.task_id)
    log.warning(
        "stop of session %s while the database is unavailable: stop key set, row written later",
        token.session_id,
    )
    return SessionInfo(
        session_id=token.session_id,
        customer_id=customer_id,
        router_id=owner.router_id or "",
        task_id=token.task_id,
        attempt=token.attempt,
        desired_state=str(DesiredState.STOPPED),
        actual_state=str(ActualState.STOPPING),
        created=False,
        requested_by=requested_by,
        created_at=None,
        started_at=None,
    )


def status() -> dict[str, Any]:
    """The seed's shape plus per-monitor details (SQL = what should run, leases = what does)."""
    settings = get_settings()
    holders = {h.token: h for h in runtime.current().semaphore.holders()}
    try:
        with sessions.db() as s:
            rows = s.execute(
                select(MonitorSession, Customer.name, Customer.username)
                .join(Customer, Customer.id == MonitorSession.customer_id)
                .where(MonitorSession.desired_state == DesiredState.RUNNING)
                .order_by(MonitorSession.created_at)
            ).all()
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(f"the database is unavailable ({type(exc).__name__})") from exc
    monitors = []
    active: list[str] = []
    for row, name, username in rows:
        holder = holders.get(str(Token.of(row)))
        if holder is not None:
            active.append(str(row.customer_id))
        info = _info(row, created=False).as_dict()
        del info["created"]
        monitors.append(
            {
                **info,
                "customer_name": name,
                "username": username,
                "live": holder is not None,
                "lease_expires_in": None if holder is None else round(holder.expires_in, 3),
            }
        )
    cap = settings.max_concurrent_monitors
    in_use = len(holders)
    return {
        "active_monitors": active,
        "monitor_count": len(active),
        "max_concurrent": cap,
        "slots_available": max(0, cap - in_use),
        "slots_in_use": in_use,
        "monitors": monitors,
    }


def _customer_uuid(customer_id: object) -> str:
    try:
        return str(uuid.UUID(str(customer_id).strip()))
    except ValueError:
        raise InvalidCustomerId(customer_id) from None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
