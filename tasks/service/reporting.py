"""status(): the monitors that should run (SQL) and those that do (leases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models import Customer, DesiredState, MonitorSession
from settings import get_settings
from tasks import runtime, sessions
from tasks.lifecycle import Token
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
