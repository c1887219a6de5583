"""A resolved customer turned into what the engine needs to run its monitor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from models import MonitorSession
from models.resolution import MonitorTarget, resolve
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


def resolve_customer(customer_id: object) -> MonitorTarget:
    """Resolve a customer (data layer errors pass through unchanged)."""
    with sessions.db() as s:
        return resolve(s, str(customer_id))


def plan_for_session(row: MonitorSession) -> MonitorPlan:
    return build_plan(resolve_customer(row.customer_id), row, sessions.db_now())


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
    )


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
