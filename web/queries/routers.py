"""Every router customers can name: routers rows plus the settings' default router.

A customer whose mikrotik_id has no routers row is monitored through MIKROTIK_*
(models.router_config); those ids are listed too, so the operator sees every
router the monitors talk to. No field here is a secret: passwords and users
are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Customer, DesiredState, MonitorSession, Router
from settings import Settings


def list_routers(session: Session, settings: Settings, live_tokens: Collection[str]) -> list[dict[str, Any]]:
    """`live_tokens`: lease tokens ("session:attempt") that a monitor holds right now."""
    counted = session.execute(select(Customer.mikrotik_id, func.count()).group_by(Customer.mikrotik_id))
    customers: dict[str, int] = {router_id: int(count) for router_id, count in counted}
    open_rows = session.execute(
        select(MonitorSession.id, MonitorSession.attempt, MonitorSession.router_id).where(
            MonitorSession.desired_state == DesiredState.RUNNING
        )
    ).all()
    opened = Counter(router_id for _, _, router_id in open_rows)
    running = Counter(router_id for sid, attempt, router_id in open_rows if f"{sid}:{attempt}" in live_tokens)

    out: list[dict[str, Any]] = []
    rows = {row.id: row for row in session.scalars(select(Router))}
    for router_id in sorted(set(rows) | set(customers) | set(opened)):
        row = rows.get(router_id)
        base: dict[str, Any]
        if row is not None:
            base = {
                "id": row.id,
                "name": row.name,
                "host": row.host,
                "port": row.port,
                "tls": row.tls,
                "tls_mode": str(row.tls_mode),
                "max_monitors": row.max_monitors,
                "max_api_sessions": row.max_api_sessions or settings.router_max_api_sessions,
                "source": "table",
            }
        else:
            base = {
                "id": router_id,
                "name": router_id,
                "host": settings.mikrotik_host,
                "port": settings.mikrotik_port,
                "tls": settings.mikrotik_tls,
                "tls_mode": str(settings.mikrotik_tls_mode),
                "max_monitors": None,
                "max_api_sessions": settings.router_max_api_sessions,
                "source": "settings",
            }
        out.append(
            {
                **base,
                "customers": customers.get(router_id, 0),
                "monitors_open": opened[router_id],
                "monitors_running": running[router_id],
            }
        )
    return out
