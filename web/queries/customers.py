"""Customer reads and writes for the REST layer (synchronous: run them in a thread).

Writes go through the data layer's validation (model validators, duplicate
checks, constraint translation in models.customer_writes), so a refused write
raises the data layer's typed errors. Passwords are write-only: the JSON of a
customer says whether one is set, never what it is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
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


# How far past the page's end `total` is counted exactly. Counting every match costs a
# pass over all of them (a 2-character search cannot use the trigram indexes: a scan of
# the table per keystroke); counting up to a bound stops early. See docs/scaling.md,
# Customer search.
TOTAL_LOOKAHEAD = 1000


@dataclass(frozen=True)
class CustomerPage:
    """One page of customers, and how many match: `total` exactly, or at least `total`
    more than the page holds when `total_capped` (the count stopped there)."""

    customers: list[dict[str, Any]]
    total: int
    total_capped: bool


def page_query(f: CustomerFilter, *, limit: int, offset: int, monitored_first: bool) -> Select[Any]:
    """The SELECT of one page: customers matching `f`, by name (monitored ones first on request).

    The page's ids are chosen first, from the customers table alone, and only those
    rows are joined to their package and monitor state: picking them never computes a
    monitor state for a row it skips (at a deep offset, that was tens of thousands of
    sub-queries, and a plan costly enough to switch PostgreSQL's JIT on).

    Monitored first is two ordered halves, each by (name, id), which the index
    ix_customers_name_id serves without sorting the table: the open sessions' customers
    and the others, each cut to offset + limit, then merged. One ORDER BY on
    "has an open session" first would sort every match on every request.
    """
    conditions = _conditions(f)
    if monitored_first:
        is_open = exists().where(_open_session())
        # The page starts `offset` rows into the monitored ones, then continues into the
        # others from where `offset` falls past the monitored ones' end: that needs how
        # many monitored ones match (none on the first page, the one a search shows).
        # Counted from the open sessions (at most one per customer), which are few.
        rest_offset: Any = literal(0)
        if offset and f.monitored is False:
            rest_offset = literal(offset)  # no match is monitored: the first half is empty
        elif offset:
            # Without the `monitored` condition: joined to the open sessions it holds
            # anyway, and its EXISTS would correlate both tables away (no FROM left).
            monitored = (
                select(func.count())
                .select_from(MonitorSession)
                .join(Customer, _open_session())
                .where(*_conditions(replace(f, monitored=None)))
                .scalar_subquery()
            )
            rest_offset = case((monitored < offset, literal(offset) - monitored), else_=0)
        halves = [
            select(Customer.id, Customer.name, literal(rank).label("rank"))
            .where(*conditions, cond)
            .order_by(Customer.name, Customer.id)
            .limit(limit)
            .offset(skip)
            .subquery()
            for rank, cond, skip in ((0, is_open, literal(offset)), (1, ~is_open, rest_offset))
        ]
        both = union_all(*(select(half) for half in halves)).subquery("page")
        ids = select(both).order_by(both.c.rank, both.c.name, both.c.id).limit(limit).subquery("page_ids")
        order: tuple[Any, ...] = (ids.c.rank, ids.c.name, ids.c.id)
    else:
        ids = (
            select(Customer.id, Customer.name)
            .where(*conditions)
            .order_by(Customer.name, Customer.id)
            .limit(limit)
            .offset(offset)
            .subquery("page")
        )
        order = (ids.c.name, ids.c.id)
    return select(Customer, _monitor_state()).join(ids, ids.c.id == Customer.id).order_by(*order)


def count_matches(session: Session, f: CustomerFilter, *, up_to: int | None) -> tuple[int, bool]:
    """How many customers match `f`: (count, False), or (up_to, True) when more than
    `up_to` do (None: count them all)."""
    conditions = _conditions(f)
    if up_to is None:
        return int(session.scalar(select(func.count()).select_from(Customer).where(*conditions)) or 0), False
    first = select(literal(1).label("one")).select_from(Customer).where(*conditions).limit(up_to + 1)
    found = int(session.scalar(select(func.count()).select_from(first.subquery())) or 0)
    return (up_to, True) if found > up_to else (found, False)


def list_customers(
    session: Session,
    f: CustomerFilter,
    *,
    limit: int,
    offset: int,
    monitored_first: bool,
    exact_total: bool = False,
) -> CustomerPage:
    """One page of customers matching `f`, and how many match: exactly when `exact_total`,
    else exactly up to TOTAL_LOOKAHEAD past the page's end."""
    rows = session.execute(page_query(f, limit=limit, offset=offset, monitored_first=monitored_first)).all()
    total, capped = count_matches(session, f, up_to=None if exact_total else offset + limit + TOTAL_LOOKAHEAD)
    return CustomerPage([customer_json(row, state) for row, state in rows], total, capped)


def page_json(page: CustomerPage, *, limit: int, offset: int) -> dict[str, Any]:
    """The answer of GET /api/customers: one page from list_customers and the total."""
    return {
        "status": "ok",
        "customers": page.customers,
        "total": page.total,
        "total_capped": page.total_capped,
        "limit": limit,
        "offset": offset,
    }


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
