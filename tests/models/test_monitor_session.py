"""monitor_sessions: at most one open session per customer, enforced by the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import ActualState, Customer, DesiredState, MonitorSession
from models.monitor_session import OPEN_SESSION_INDEX


def _customer(session: Session) -> Customer:
    customer = Customer(
        mikrotik_id="mikrotik-001",
        username="budi",
        name="Budi",
        service_type="pppoe",
        pppoe_username="budi",
        status="active",
    )
    session.add(customer)
    session.flush()
    return customer


def test_monitor_session_second_open_session_for_customer_refused(pg_session: Session) -> None:
    with pg_session.begin():
        customer = _customer(pg_session)
        pg_session.add(MonitorSession(customer_id=customer.id, router_id="mikrotik-001"))
    with pytest.raises(IntegrityError) as caught, pg_session.begin():
        pg_session.add(MonitorSession(customer_id=customer.id, router_id="mikrotik-001"))
    assert caught.value.orig.diag.constraint_name == OPEN_SESSION_INDEX  # type: ignore[union-attr]


def test_monitor_session_new_open_session_allowed_after_stop(pg_session: Session) -> None:
    with pg_session.begin():
        customer = _customer(pg_session)
        first = MonitorSession(customer_id=customer.id, router_id="mikrotik-001", max_duration_s=60)
        pg_session.add(first)
    with pg_session.begin():
        first.desired_state = DesiredState.STOPPED
        first.actual_state = ActualState.STOPPED
        first.stopped_at = datetime.now(UTC)
        first.stop_reason = "api"
        pg_session.add(MonitorSession(customer_id=customer.id, router_id="mikrotik-001"))
    with pg_session.begin():
        rows = pg_session.query(MonitorSession).order_by(MonitorSession.created_at).all()
    assert [(r.desired_state, r.actual_state, r.attempt) for r in rows] == [
        (DesiredState.STOPPED, ActualState.STOPPED, 0),
        (DesiredState.RUNNING, ActualState.PENDING, 0),
    ]


def test_monitor_session_unknown_state_refused_by_database(pg_session: Session) -> None:
    with pg_session.begin():
        customer = _customer(pg_session)
    with pytest.raises(IntegrityError), pg_session.begin():
        pg_session.connection().exec_driver_sql(
            "INSERT INTO monitor_sessions (customer_id, router_id, actual_state) "
            f"VALUES ('{customer.id}', 'mikrotik-001', 'exploded')"
        )
