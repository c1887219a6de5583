"""start_many(): many monitors at once, each started exactly as `start` would start it,
in a few round trips instead of a dozen per customer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from models import ActualState, Customer, DesiredState, MonitorSession
from models.resolution import InvalidCustomerId, MonitorTarget, ResolutionError, resolve
from settings import get_settings
from tasks import lifecycle, runtime, sessions
from tasks.app import app
from tasks.lifecycle import FIRST_ATTEMPT, Token
from tasks.semaphore import AlreadyMonitored
from tasks.service.errors import DATABASE_ERRORS, DatabaseUnavailable, MonitoringDisabled
from tasks.service.info import SessionInfo, session_info
from tasks.service.starting import (
    launch_failure,
    new_session_row,
    refusal,
    remember_ping_off,
    reserve,
    start,
)

log = logging.getLogger(__name__)

# Customers per bulk start (one request): the web layer enforces it for its callers.
MAX_BULK_START = 1000


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


# Each step of a bulk start works on the customers still in the running, keyed by their
# canonical id, and returns the results it decided.
Results = dict[str, StartResult]
Targets = dict[str, MonitorTarget]
Tokens = dict[str, Token]


def start_many(
    customer_ids: Sequence[object], requested_by: str | None = None, ping: bool = True
) -> list[StartResult]:
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
    DatabaseUnavailable when PostgreSQL does not answer. `ping=False`: the sessions
    started now run without the router-side ping (`start`'s `ping`).
    """
    settings = get_settings()
    if not settings.enable_traffic_monitor:
        raise MonitoringDisabled()
    if len(customer_ids) > MAX_BULK_START:
        raise ValueError(f"at most {MAX_BULK_START} customers per bulk start")
    try:
        results = _start_many(customer_ids, requested_by, ping)
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


def _start_many(customer_ids: Sequence[object], requested_by: str | None, ping: bool) -> Results:
    wanted, results = _distinct_ids(customer_ids)
    targets, found = _resolve(wanted)
    results.update(found)
    if not targets:
        return results
    tokens = {key: Token(str(uuid.uuid4()), FIRST_ATTEMPT) for key in targets}
    if not ping:
        remember_ping_off(t.session_id for t in tokens.values())
    try:
        _insert_sessions(targets, tokens, requested_by)
    except IntegrityError:
        # A concurrent start of one of them won the single-flight race: one by one, each
        # finds the winner's row or starts (rare, and exactly what `start` does).
        results.update(_one_by_one(targets, requested_by, ping))
        return results
    fences, refused = _reserve(targets, tokens)
    results.update(refused)
    if fences:
        _mark_starting(tokens, fences)
        failed = _launch(targets, tokens, fences)
        results.update(failed)
        results.update(_started(tokens, [key for key in fences if key not in failed]))
    return results


def _distinct_ids(customer_ids: Sequence[object]) -> tuple[list[uuid.UUID], Results]:
    """Each valid id once, and the refusal of each one that is no UUID."""
    wanted: list[uuid.UUID] = []
    refused: Results = {}
    seen: set[str] = set()
    for raw in customer_ids:
        key = _key(raw)
        if key in seen:
            continue
        seen.add(key)
        if key.startswith("invalid:"):
            refused[key] = StartResult(str(raw), None, InvalidCustomerId(raw))
        else:
            wanted.append(uuid.UUID(key))
    return wanted, refused


def _resolve(wanted: list[uuid.UUID]) -> tuple[Targets, Results]:
    """In one transaction: the target of each customer to start, and the result of each
    already monitored (its open session) or refused by resolution."""
    targets: Targets = {}
    results: Results = {}
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
                results[key] = StartResult(key, session_info(existing[key], created=False))
                continue
            try:
                targets[key] = resolve(s, cid)
            except ResolutionError as exc:
                results[key] = StartResult(key, None, exc)
    return targets, results


def _insert_sessions(targets: Targets, tokens: Tokens, requested_by: str | None) -> None:
    """One INSERT for every new session row (IntegrityError when a concurrent start won)."""
    with sessions.db() as s:
        s.add_all([new_session_row(target, tokens[key], requested_by) for key, target in targets.items()])


def _one_by_one(targets: Targets, requested_by: str | None, ping: bool) -> Results:
    results: Results = {}
    for key in targets:
        try:
            results[key] = StartResult(key, start(key, requested_by, ping))
        except Exception as exc:
            results[key] = StartResult(key, None, exc)
    return results


def _reserve(targets: Targets, tokens: Tokens) -> tuple[dict[str, int], Results]:
    """One pipeline of reservations, in order: the fence of each one granted, and the
    result of each one refused (undone)."""
    settings = get_settings()
    order = list(targets)
    try:
        answers = runtime.current().semaphore.acquire_many(
            [
                (str(tokens[k]), targets[k].customer_id, targets[k].router_id, targets[k].max_monitors)
                for k in order
            ],
            global_limit=settings.max_concurrent_monitors,
            ttl=settings.monitor_lease_ttl,
        )
    except BaseException as exc:
        for key in order:
            _undo_quietly(key, tokens[key], targets[key], f"not started: {type(exc).__name__}")
        raise
    fences: dict[str, int] = {}
    refused: Results = {}
    for key, answer in zip(order, answers):
        outcome: int | Exception = answer
        if isinstance(answer, AlreadyMonitored):
            # An old session winding down may be taken over: the single path decides.
            outcome = _reserve_one(tokens[key], targets[key])
        if isinstance(outcome, int):
            fences[key] = outcome
            continue
        refused[key] = StartResult(key, None, refusal(outcome, targets[key]))
        _undo_quietly(key, tokens[key], targets[key], f"not started: {outcome}")
    return fences, refused


def _reserve_one(token: Token, target: MonitorTarget) -> int | Exception:
    """`reserve`, with whatever refused it returned instead of raised."""
    try:
        return reserve(token, target)
    except Exception as exc:
        return exc


def _mark_starting(tokens: Tokens, keys: dict[str, int]) -> None:
    """One UPDATE: the reserved sessions are starting (before the launch, as in `start`)."""
    with sessions.db() as s:
        s.execute(
            update(MonitorSession)
            .where(
                MonitorSession.id.in_([uuid.UUID(tokens[k].session_id) for k in keys]),
                MonitorSession.attempt == FIRST_ATTEMPT,
            )
            .values(actual_state=ActualState.STARTING)
        )


def _launch(targets: Targets, tokens: Tokens, fences: dict[str, int]) -> Results:
    """The messages, on one broker connection: the result of each one that failed (undone)."""
    failed: Results = {}
    now_ms = runtime.current().semaphore.now_ms()
    with app.producer_or_acquire() as producer:
        for key, fence in fences.items():
            try:
                lifecycle.launch(tokens[key], fence, targets[key], now_ms, producer=producer)
            except Exception as exc:
                failed[key] = StartResult(key, None, launch_failure(exc))
                _undo_quietly(key, tokens[key], targets[key], f"not started: {type(exc).__name__}")
    return failed


def _started(tokens: Tokens, launched: list[str]) -> Results:
    """The result of each launched monitor, from its row as it is now."""
    with sessions.db() as s:
        fresh = {
            str(row.customer_id): row
            for row in s.scalars(
                select(MonitorSession).where(
                    MonitorSession.id.in_([uuid.UUID(tokens[k].session_id) for k in launched])
                )
            )
        }
    return {key: StartResult(key, session_info(fresh[key], created=True)) for key in launched}


def _undo_quietly(key: str, token: Token, target: MonitorTarget, reason: str) -> None:
    try:
        runtime.current().semaphore.release(str(token), target.customer_id, target.router_id)
    except Exception:
        log.exception("bulk start: could not release the reservation of %s (its TTL will)", key)
    try:
        sessions.close(token.session_id, reason)
    except Exception:
        log.exception("bulk start: could not close session %s", token.session_id)
