"""A resolved customer turned into what the engine needs to run its monitor."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from models import Customer, MonitorSession, Router
from models.resolution import MonitorTarget, ResolutionError, resolve
from routeros import RouterEndpoint
from settings import get_settings
from tasks import sessions
from tasks.message import CustomerMeta


@dataclass(frozen=True)
class MonitorPlan:
    customer_id: str
    router_id: str
    router_limit: int | None
    endpoint: RouterEndpoint
    kind: str  # "interface" (streamed) or "queue" (polled)
    interface: str  # interface or queue name, as the message shows it
    queue_query: str  # /queue/simple/print query word (queue kinds only)
    meta: CustomerMeta
    remaining_seconds: float  # until the session's max duration
    # What the monitor pings (tasks/pinger.py): a fixed address, or the login whose
    # current address the router's active sessions tell; neither: nothing to ping.
    ping_address: str | None = None
    ping_login: str | None = None


def resolve_customer(customer_id: object) -> MonitorTarget:
    """Resolve a customer (data layer errors pass through unchanged)."""
    with sessions.db() as s:
        return resolve(s, str(customer_id))


def plan_for_session(row: MonitorSession) -> MonitorPlan:
    return build_plan(resolve_customer(row.customer_id), row, sessions.db_now())


def load_attempt(
    session_id: object, wanted: Callable[[MonitorSession], bool]
) -> tuple[MonitorSession | None, MonitorPlan | ResolutionError | None]:
    """A monitor run's first look, in ONE statement: the session row, its customer (with
    its package), the customer's routers row and the database's clock; then, when
    `wanted(row)`, the plan of the customer (or the data layer's refusal), resolved from
    the rows loaded. The same as `sessions.get` then `plan_for_session`, which took three
    transactions and seven round trips per start: at a burst of a thousand starts each
    round trip is a wait for the interpreter lock among a thousand threads
    (docs/scaling.md). Database errors propagate."""
    with sessions.db_autocommit() as s:
        found = s.execute(
            select(MonitorSession, Customer, Router, func.now())
            .outerjoin(Customer, Customer.id == MonitorSession.customer_id)
            .outerjoin(Router, Router.id == Customer.mikrotik_id)
            .where(MonitorSession.id == uuid.UUID(str(session_id)))
        ).one_or_none()
        if found is None:
            return None, None
        # The routers row is not used here: loaded, it is in the session's identity map,
        # where resolve's router_config finds it without another query.
        row, customer, _router, now = found
        if not wanted(row):
            return row, None
        try:
            # No customer row: resolve looks it up by id and refuses as ever (not found).
            target = resolve(s, customer if customer is not None else row.customer_id)
        except ResolutionError as exc:
            return row, exc
    assert isinstance(now, datetime)
    return row, build_plan(target, row, now if now.tzinfo is not None else now.replace(tzinfo=UTC))


def build_plan(target: MonitorTarget, row: MonitorSession, db_now: datetime) -> MonitorPlan:
    config = target.router
    endpoint = RouterEndpoint(**config.endpoint_kwargs())
    if target.kind == "interface":
        kind, query = "interface", ""
    elif target.kind == "queue":
        kind, query = "queue", f"?name={target.name}"
    else:
        kind, query = "queue", f"?target={target.queue_target}"
    meta = meta_for(target)
    return MonitorPlan(
        customer_id=str(target.customer_id),
        router_id=config.id,
        router_limit=config.max_monitors,
        endpoint=endpoint,
        kind=kind,
        interface=target.interface,
        queue_query=query,
        meta=meta,
        remaining_seconds=remaining_seconds(row, db_now),
        ping_address=_host(target.address),
        ping_login=target.login,
    )


def _host(address: str | None) -> str | None:
    """ "10.0.0.5/32" or "10.0.0.5" -> "10.0.0.5"; None for no (or no valid) address."""
    if not address:
        return None
    try:
        return str(ipaddress.ip_interface(str(address).strip()).ip)
    except ValueError:
        return None


def meta_for(target: MonitorTarget) -> CustomerMeta:
    """What every stream entry says about the customer (never a secret)."""
    return CustomerMeta(
        customer_id=str(target.customer_id),
        customer_name=target.customer_name,
        username=target.username,
        service_type=str(target.service_type),
        interface=target.interface,
        router=target.router.name or target.router.id,
        package=target.package_name,
        package_download_bps=target.package_download_bps,
        package_upload_bps=target.package_upload_bps,
    )


def remaining_seconds(row: MonitorSession, db_now: datetime) -> float:
    """Max duration counts from the session's creation, across restarts; both times are
    the database's, so no host clock moves a session's end."""
    limit = row.max_duration_s or get_settings().monitor_max_duration
    created = row.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return max(0.0, float(limit) - (db_now - created).total_seconds())
