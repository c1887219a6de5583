"""status(): the monitors that should run (SQL) and those that do (leases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from common.text import as_text
from models import Customer, DesiredState, MonitorSession
from settings import get_settings
from tasks import keys, runtime, sessions
from tasks.lifecycle import Token, worker_of_claimant
from tasks.service.errors import DATABASE_ERRORS, DatabaseUnavailable
from tasks.service.info import session_info


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
    workers = _workers([str(row.customer_id) for row, _, _ in rows if str(Token.of(row)) in holders])
    monitors = []
    active: list[str] = []
    for row, name, username in rows:
        holder = holders.get(str(Token.of(row)))
        if holder is not None:
            active.append(str(row.customer_id))
        info = session_info(row, created=False).as_dict()
        del info["created"]
        monitors.append(
            {
                **info,
                "customer_name": name,
                "username": username,
                "live": holder is not None,
                "lease_expires_in": None if holder is None else round(holder.expires_in, 3),
                "worker": workers.get(str(row.customer_id)) if holder is not None else None,
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


def _workers(customer_ids: list[str]) -> dict[str, str]:
    """customer id -> the worker (Celery node name) whose monitor run claimed its lease,
    read from the owner keys in one round trip (a reservation not yet claimed has none)."""
    if not customer_ids:
        return {}
    pipe = runtime.current().redis.pipeline(transaction=False)
    for cid in customer_ids:
        pipe.hget(keys.customer_owner(cid), "claimant")
    out: dict[str, str] = {}
    for cid, claimant in zip(customer_ids, pipe.execute()):
        if claimant:
            out[cid] = worker_of_claimant(as_text(claimant))
    return out
