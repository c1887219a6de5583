"""Customer reads and writes for the REST layer (synchronous: run them in a thread).

Writes go through the data layer's validation (model validators, duplicate
checks, constraint translation in models.customer_writes), so a refused write
raises the data layer's typed errors. Passwords are write-only: the JSON of a
customer says whether one is set, never what it is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, case, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from models import Customer, CustomerStatus, DesiredState, InvalidFieldError, MonitorSession, Package
from models.customer_writes import add_customer, find_duplicate, flush
from models.resolution import CustomerNotFound
from tasks.timestamps import iso

_PLAIN_FIELDS = (
    "mikrotik_id",
    "username",
    "name",
    "service_type",
    "status",
    "phone",
    "email",
    "pppoe_username",
    "pppoe_profile",
    "hotspot_username",
    "hotspot_mac_address",
    "static_ip",
    "assigned_ip",
    "mac_address",
    "package_id",
    "interface_name",
    "queue_name",
)


@dataclass(frozen=True)
class CustomerFilter:
    q: str | None = None
    router: str | None = None
    service_type: str | None = None
    status: str | None = None
    monitored: bool | None = None


def customer_json(row: Customer, monitor_state: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(row.id)}
    for name in _PLAIN_FIELDS:
        value = getattr(row, name)
        out[name] = str(value) if value is not None and name != "package_id" else value
    out["has_pppoe_password"] = bool(row.pppoe_password)
    out["has_hotspot_password"] = bool(row.hotspot_password)
    out["last_online"] = iso(row.last_online)
    package = row.package
    out["package"] = (
        None
        if package is None
        else {
            "id": package.id,
            "name": package.name,
            "download_bps": package.download_bps,
            "upload_bps": package.upload_bps,
        }
    )
    out["monitored"] = monitor_state is not None
    out["monitor_state"] = None if monitor_state is None else str(monitor_state)
    out["created_at"] = iso(row.created_at)
    out["updated_at"] = iso(row.updated_at)
    return out


def _open_session() -> ColumnElement[bool]:
    return (MonitorSession.customer_id == Customer.id) & (
        MonitorSession.desired_state == DesiredState.RUNNING
    )


def _monitor_state() -> Any:
    return (
        select(MonitorSession.actual_state)
        .where(_open_session())
        .correlate(Customer)
        .limit(1)
        .scalar_subquery()
        .label("monitor_state")
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(f: CustomerFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.q:
        pattern = _like(f.q)
        out.append(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        Customer.name,
                        Customer.username,
                        Customer.pppoe_username,
                        Customer.hotspot_username,
                    )
                )
            )
        )
    if f.router is not None:
        out.append(Customer.mikrotik_id == f.router)
    if f.service_type is not None:
        out.append(Customer.service_type == f.service_type)
    if f.status is not None:
        if f.status == CustomerStatus.ACTIVE:
            # A NULL status (a seed-era writer sent NULL explicitly) reads as the default, active.
            out.append(or_(Customer.status == f.status, Customer.status.is_(None)))
        else:
            out.append(Customer.status == f.status)
    if f.monitored is not None:
        is_open = exists().where(_open_session())
        out.append(is_open if f.monitored else ~is_open)
    return out


def list_customers(
    session: Session, f: CustomerFilter, *, limit: int, offset: int, monitored_first: bool
) -> tuple[list[dict[str, Any]], int]:
    """One page of customers matching `f`, and how many match in all."""
    conditions = _conditions(f)
    query: Select[Any] = select(Customer, _monitor_state()).where(*conditions)
    if monitored_first:
        query = query.order_by(case((exists().where(_open_session()), 0), else_=1))
    query = query.order_by(Customer.name, Customer.id).limit(limit).offset(offset)
    rows = session.execute(query).all()
    total = session.scalar(select(func.count()).select_from(Customer).where(*conditions)) or 0
    return [customer_json(row, state) for row, state in rows], int(total)


def page_json(customers: list[dict[str, Any]], total: int, *, limit: int, offset: int) -> dict[str, Any]:
    """The answer of GET /api/customers: one page from list_customers and the total."""
    return {"status": "ok", "customers": customers, "total": total, "limit": limit, "offset": offset}


def get_customer(session: Session, customer_id: uuid.UUID) -> dict[str, Any]:
    row = session.execute(select(Customer, _monitor_state()).where(Customer.id == customer_id)).first()
    if row is None:
        raise CustomerNotFound(customer_id)
    return customer_json(row[0], row[1])


def _check_package(session: Session, fields: dict[str, Any]) -> None:
    package_id = fields.get("package_id")
    if package_id is not None and session.get(Package, package_id) is None:
        raise InvalidFieldError("package_id", package_id, "no package with this id")


def create_customer(session: Session, fields: dict[str, Any]) -> dict[str, Any]:
    _check_package(session, fields)
    # A customer created through the API is one to monitor: active unless the request
    # says otherwise. Said here, not left to a default: the column's is 'inactive'
    # (the seed's newest schema, revision 0005).
    row = add_customer(session, **{"status": CustomerStatus.ACTIVE, **fields})
    session.refresh(row)  # server-side defaults: created_at, updated_at
    return customer_json(row, None)


def update_customer(session: Session, customer_id: uuid.UUID, fields: dict[str, Any]) -> dict[str, Any]:
    row = session.get(Customer, customer_id)
    if row is None:
        raise CustomerNotFound(customer_id)
    _check_package(session, fields)
    for name, value in fields.items():
        setattr(row, name, value)  # the model's validators run here
    # The duplicate query must not flush the change first (a raw IntegrityError).
    with session.no_autoflush:
        duplicate = find_duplicate(session, row)
    if duplicate is not None:
        raise duplicate
    flush(session)
    session.refresh(row)
    return get_customer(session, customer_id)


def require_customer(session: Session, customer_id: uuid.UUID) -> None:
    if session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise CustomerNotFound(customer_id)


def is_monitored(session: Session, customer_id: uuid.UUID) -> bool:
    return bool(session.scalar(select(exists().where(_open_session(), Customer.id == customer_id))))


def delete_customer(session: Session, customer_id: uuid.UUID) -> None:
    """Delete the row; its monitor_sessions rows go with it (ON DELETE CASCADE)."""
    # A DELETE's result is a cursor result (Session.execute is typed for any statement).
    result = cast(CursorResult[Any], session.execute(delete(Customer).where(Customer.id == customer_id)))
    if result.rowcount == 0:
        raise CustomerNotFound(customer_id)
