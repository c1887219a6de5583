"""The monitor routes' answers, built from the service's results: start, stop, and status
with what it adds to service.status() (each monitored customer's interface and newest
sample). The CLI's local backend answers with these too, so `mtmon` prints the same
with or without --api."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.text import as_text
from models import Customer
from models.resolution import ResolutionError, resolve
from settings import Settings
from tasks import service
from tasks.keys import customer_stream
from tasks.message import LATENCY
from tasks.timestamps import iso, rfc3339

# Entries read back per customer for its newest sample or event (ping replies skipped):
# with one of each a second, the newest sample is among the last few.
NEWEST_LOOKBACK = 10


def interfaces(session: Session, customer_ids: Collection[str], settings: Settings) -> dict[str, str | None]:
    """customer id -> the interface or queue its monitor watches (None: no longer resolvable).

    Resolved by the data layer, as the engine does, so the two cannot disagree."""
    if not customer_ids:
        return {}
    rows = session.scalars(select(Customer).where(Customer.id.in_([uuid.UUID(c) for c in customer_ids])))
    out: dict[str, str | None] = {}
    for row in rows:
        try:
            out[str(row.id)] = resolve(session, row, settings).interface
        except ResolutionError:
            out[str(row.id)] = None
    return out


def snapshot(db: Callable[[], AbstractContextManager[Session]], settings: Settings) -> dict[str, Any]:
    """service.status() with `interfaces` (synchronous: the web runs it in a thread)."""
    status = service.status()
    ids = [m["customer_id"] for m in status["monitors"]]
    with db() as session:
        status["interfaces"] = interfaces(session, ids, settings)
    return status


async def newest_entry_times(client: aioredis.Redis, customer_ids: list[str]) -> dict[str, str | None]:
    """customer id -> timestamp of its newest sample or status event (one pipeline for
    all). Ping replies do not count: a monitor whose samples stopped while its ping goes
    on must not look alive; one of them among the last NEWEST_LOOKBACK entries is None."""
    if not customer_ids:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for customer_id in customer_ids:
            pipe.xrevrange(customer_stream(customer_id), count=NEWEST_LOOKBACK)
        replies = await pipe.execute()
    out: dict[str, str | None] = {}
    for customer_id, entries in zip(customer_ids, replies):
        newest = next((e for e in entries or () if _entry_type(e) != LATENCY), None)
        out[customer_id] = _entry_time(newest) if newest is not None else None
    return out


def _entry_type(entry: tuple[Any, dict[Any, Any]]) -> str:
    fields = entry[1]
    return as_text(fields.get(b"type") or fields.get("type") or "")


def _entry_time(entry: tuple[Any, dict[Any, Any]]) -> str:
    entry_id, fields = entry
    stamp = fields.get(b"timestamp") or fields.get("timestamp")
    if stamp:
        return as_text(stamp)  # already RFC 3339 UTC (tasks.message)
    millis = int(as_text(entry_id).split("-", 1)[0])
    return rfc3339(datetime.fromtimestamp(millis / 1000, UTC))


def status_json(snapshot: dict[str, Any], last_sample_at: dict[str, str | None]) -> dict[str, Any]:
    """The answer of GET /api/monitor/status, from `snapshot()` and `newest_entry_times()`."""
    monitors = [
        {
            "customer_id": m["customer_id"],
            "customer_name": m["customer_name"],
            "username": m["username"],
            "router": m["router_id"],
            "interface": snapshot["interfaces"].get(m["customer_id"]),
            "state": m["actual_state"],
            "started_at": iso(m["started_at"]),
            "last_sample_at": last_sample_at.get(m["customer_id"]),
            "live": m["live"],
            "session_id": m["session_id"],
            "task_id": m["task_id"],
            "attempt": m["attempt"],
            "requested_by": m["requested_by"],
            "created_at": iso(m["created_at"]),
            "lease_expires_in": m["lease_expires_in"],
            "worker": m.get("worker"),
        }
        for m in snapshot["monitors"]
    ]
    return {
        "status": "ok",
        "active_monitors": snapshot["active_monitors"],
        "monitor_count": snapshot["monitor_count"],
        "max_concurrent": snapshot["max_concurrent"],
        "slots_available": snapshot["slots_available"],
        "monitors": monitors,
    }


def started_json(info: service.SessionInfo) -> dict[str, Any]:
    """The answer of POST /api/monitor/start."""
    return {
        "status": "success",
        "message": "Monitoring started" if info.created else "Already monitoring",
        "customer_id": info.customer_id,
        "session_id": info.session_id,
        "task_id": info.task_id,
        "router": info.router_id,
        "state": info.actual_state,
    }


def stopped_json(info: service.SessionInfo) -> dict[str, Any]:
    """The answer of POST /api/monitor/stop."""
    return {
        "status": "success",
        "message": "Monitoring stopped",
        "customer_id": info.customer_id,
        "session_id": info.session_id,
        "state": info.actual_state,
    }
