"""The seed's monitor routes: start, stop and status (same paths, same JSON, more fields)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.responses import JSONResponse, Response

from models.resolution import CustomerNotActive, CustomerNotFound, InvalidCustomerId, ResolutionError
from tasks import service
from tasks.semaphore import AlreadyMonitored
from web.declare import Call, Endpoint, Param, Reply
from web.errors import kind_of
from web.queries import monitors as q
from web.routes.common import (
    BROKER_ERRORS,
    DATABASE_ERRORS,
    REDIS_ERRORS,
    customer_id_param,
    requested_by,
)
from web.state import AppState, app_state


async def start(state: AppState, customer_id: uuid.UUID, requested_by: str, ping: bool = True) -> Response:
    """Start (or find) the customer's monitor; `requested_by` is recorded on the session."""
    with counting_refusals(state):
        info = await state.run(service.start, customer_id, requested_by=requested_by, ping=ping)
    state.metrics.starts.labels("started" if info.created else "already").inc()
    return JSONResponse(q.started_json(info))


async def stop(state: AppState, customer_id: uuid.UUID, requested_by: str) -> Response:
    with counting_refusals(state):
        info = await state.run(service.stop, customer_id, requested_by=requested_by)
    state.metrics.stops.inc()
    return JSONResponse(q.stopped_json(info))


@contextmanager
def counting_refusals(state: AppState) -> Iterator[None]:
    """A refused start or stop is counted by its error code (the error table's)."""
    try:
        yield
    except Exception as exc:
        kind = kind_of(exc)
        state.metrics.refusals.labels(kind.code if kind is not None else "internal_error").inc()
        raise


async def start_monitor(call: Call) -> Response:
    """Start live monitoring of a customer.

    Idempotent: a customer already monitored answers 200 with "Already monitoring"
    and its running session. The monitor publishes to the customer's stream
    (GET /api/customers/{customer_id}/traffic) and to the WebSocket. It also pings the
    customer from the router (MONITOR_PING) unless `ping=false`; an already running
    monitor keeps the choice it was started with."""
    return await start(
        app_state(call.request),
        call.params["customer_id"],
        requested_by(call.request),
        ping=call.params["ping"],
    )


async def start_monitors(call: Call) -> Response:
    """Start many monitors in one call (up to 1,000 customers).

    Each customer is started exactly as POST /api/monitor/start would start it, with the
    same rules, and gets its own result, in the order asked: `started`, `already`
    (monitored before: its running session), or `refused` with the HTTP status, error
    code and message a single start would have answered (404 `customer_not_found`,
    429 `capacity_exceeded`, ...). The call itself fails only for what refuses every
    customer (monitoring disabled, the database or Redis unavailable). One Celery task
    per monitor, as ever; the difference is a few database and Redis round trips for
    the whole batch instead of a dozen per customer."""
    state = app_state(call.request)
    ids = list(call.body["customer_ids"])
    ping = bool(call.body.get("ping", True))
    with counting_refusals(state):
        outcomes = await state.run(
            service.start_many, ids, requested_by=requested_by(call.request), ping=ping
        )
    results: list[dict[str, Any]] = []
    counts = {"started": 0, "already": 0, "refused": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
        item: dict[str, Any] = {"customer_id": outcome.customer_id, "status": outcome.status}
        if outcome.info is not None:
            state.metrics.starts.labels(outcome.status).inc()
            item.update(
                session_id=outcome.info.session_id,
                task_id=outcome.info.task_id,
                router=outcome.info.router_id,
                state=outcome.info.actual_state,
            )
        else:
            assert outcome.error is not None
            kind = kind_of(outcome.error)
            if kind is None:
                raise outcome.error  # a bug, as for a single start: the 500 handler logs it
            state.metrics.refusals.labels(kind.code).inc()
            item.update(
                http_status=kind.status,
                code=kind.code,
                message=kind.message(outcome.error),
                **kind.extra(outcome.error),
            )
        results.append(item)
    return JSONResponse({"status": "success", **counts, "results": results})


async def stop_monitor(call: Call) -> Response:
    """Stop a customer's monitor; it publishes a `stopped` event within about a second."""
    return await stop(app_state(call.request), call.params["customer_id"], requested_by(call.request))


async def monitor_status(call: Call) -> Response:
    """The seed's status (active_monitors: customers whose monitor holds its lease) plus
    one `monitors` item per open session, live or not."""
    state = app_state(call.request)
    snapshot = await state.run(q.snapshot, state.db, state.settings)
    last = await q.newest_entry_times(state.redis, [m["customer_id"] for m in snapshot["monitors"]])
    return JSONResponse(q.status_json(snapshot, last))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/monitor/start",
        start_monitor,
        "Start monitoring a customer",
        "monitor",
        (Reply(200, "monitoring (started now, or already)", "MonitorStarted"),),
        params=(
            customer_id_param("query"),
            Param(
                "ping",
                "query",
                {"type": "boolean", "default": True},
                "false: this session runs without the router-side ping (MONITOR_PING)",
            ),
        ),
        raises=(
            InvalidCustomerId,
            CustomerNotFound,
            CustomerNotActive,
            AlreadyMonitored,
            ResolutionError,
            service.CapacityExceeded,
            service.MonitoringDisabled,
            service.StartFailed,
            service.StorageFull,
            service.DatabaseUnavailable,
            *DATABASE_ERRORS,
            *REDIS_ERRORS,
        ),
    ),
    Endpoint(
        "POST",
        "/api/monitor/start-many",
        start_monitors,
        "Start monitoring many customers",
        "monitor",
        (
            Reply(
                200,
                "one result per customer: started, already, or refused with its error",
                "MonitorStartManyResult",
            ),
        ),
        body="MonitorStartMany",
        raises=(service.MonitoringDisabled, *DATABASE_ERRORS, *REDIS_ERRORS, *BROKER_ERRORS),
    ),
    Endpoint(
        "POST",
        "/api/monitor/stop",
        stop_monitor,
        "Stop monitoring a customer",
        "monitor",
        (Reply(200, "the monitor was asked to stop", "MonitorStopped"),),
        params=(customer_id_param("query"),),
        raises=(
            InvalidCustomerId,
            service.NotMonitored,
            service.DatabaseUnavailable,
            *DATABASE_ERRORS,
            *REDIS_ERRORS,
            *BROKER_ERRORS,
        ),
    ),
    Endpoint(
        "GET",
        "/api/monitor/status",
        monitor_status,
        "Running monitors and free slots",
        "monitor",
        (Reply(200, "the seed's status plus per-monitor details", "MonitorStatus"),),
        raises=(service.DatabaseUnavailable, *DATABASE_ERRORS, *REDIS_ERRORS),
    ),
]
