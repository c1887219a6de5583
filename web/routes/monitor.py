"""The seed's monitor routes: start, stop and status (same paths, same JSON, more fields)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from starlette.responses import JSONResponse, Response

from models.resolution import CustomerNotActive, CustomerNotFound, InvalidCustomerId, ResolutionError
from settings import as_text
from tasks import service
from tasks.keys import customer_stream
from tasks.semaphore import AlreadyMonitored
from tasks.timestamps import iso, rfc3339
from web.declare import Call, Endpoint, Reply
from web.errors import kind_of
from web.queries.monitors import interfaces
from web.routes.common import (
    BROKER_ERRORS,
    DATABASE_ERRORS,
    REDIS_ERRORS,
    customer_id_param,
    requested_by,
)
from web.state import AppState, app_state


async def start(state: AppState, customer_id: uuid.UUID, requested_by: str) -> Response:
    """Start (or find) the customer's monitor; `requested_by` is recorded on the session."""
    with counting_refusals(state):
        info = await state.run(service.start, customer_id, requested_by=requested_by)
    state.metrics.starts.labels("started" if info.created else "already").inc()
    return JSONResponse(
        {
            "status": "success",
            "message": "Monitoring started" if info.created else "Already monitoring",
            "customer_id": info.customer_id,
            "session_id": info.session_id,
            "task_id": info.task_id,
            "router": info.router_id,
            "state": info.actual_state,
        }
    )


async def stop(state: AppState, customer_id: uuid.UUID, requested_by: str) -> Response:
    with counting_refusals(state):
        info = await state.run(service.stop, customer_id, requested_by=requested_by)
    state.metrics.stops.inc()
    return JSONResponse(
        {
            "status": "success",
            "message": "Monitoring stopped",
            "customer_id": info.customer_id,
            "session_id": info.session_id,
            "state": info.actual_state,
        }
    )


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
    (GET /api/customers/{customer_id}/traffic) and to the WebSocket."""
    return await start(app_state(call.request), call.params["customer_id"], requested_by(call.request))


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
    with counting_refusals(state):
        outcomes = await state.run(service.start_many, ids, requested_by=requested_by(call.request))
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


def _snapshot(state: AppState) -> dict[str, Any]:
    status = service.status()
    ids = [m["customer_id"] for m in status["monitors"]]
    with state.db() as session:
        status["interfaces"] = interfaces(session, ids, state.settings)
    return status


async def newest_entry_times(client: aioredis.Redis, customer_ids: list[str]) -> dict[str, str | None]:
    """customer id -> timestamp of its newest stream entry (one pipeline for all)."""
    if not customer_ids:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for customer_id in customer_ids:
            pipe.xrevrange(customer_stream(customer_id), count=1)
        replies = await pipe.execute()
    out: dict[str, str | None] = {}
    for customer_id, entries in zip(customer_ids, replies):
        out[customer_id] = _entry_time(entries[0]) if entries else None
    return out


def _entry_time(entry: tuple[Any, dict[Any, Any]]) -> str:
    entry_id, fields = entry
    stamp = fields.get(b"timestamp") or fields.get("timestamp")
    if stamp:
        return as_text(stamp)  # already RFC 3339 UTC (tasks.message)
    millis = int(as_text(entry_id).split("-", 1)[0])
    return rfc3339(datetime.fromtimestamp(millis / 1000, UTC))


async def monitor_status(call: Call) -> Response:
    """The seed's status (active_monitors: customers whose monitor holds its lease) plus
    one `monitors` item per open session, live or not."""
    state = app_state(call.request)
    snapshot = await state.run(_snapshot, state)
    ids = [m["customer_id"] for m in snapshot["monitors"]]
    last = await newest_entry_times(state.redis, ids)
    monitors = [
        {
            "customer_id": m["customer_id"],
            "customer_name": m["customer_name"],
            "username": m["username"],
            "router": m["router_id"],
            "interface": snapshot["interfaces"].get(m["customer_id"]),
            "state": m["actual_state"],
            "started_at": iso(m["started_at"]),
            "last_sample_at": last.get(m["customer_id"]),
            "live": m["live"],
            "session_id": m["session_id"],
            "task_id": m["task_id"],
            "attempt": m["attempt"],
            "requested_by": m["requested_by"],
            "created_at": iso(m["created_at"]),
            "lease_expires_in": m["lease_expires_in"],
        }
        for m in snapshot["monitors"]
    ]
    return JSONResponse(
        {
            "status": "ok",
            "active_monitors": snapshot["active_monitors"],
            "monitor_count": snapshot["monitor_count"],
            "max_concurrent": snapshot["max_concurrent"],
            "slots_available": snapshot["slots_available"],
            "monitors": monitors,
        }
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/monitor/start",
        start_monitor,
        "Start monitoring a customer",
        "monitor",
        (Reply(200, "monitoring (started now, or already)", "MonitorStarted"),),
        params=(customer_id_param("query"),),
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
