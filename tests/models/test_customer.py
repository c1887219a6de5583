"""Bad customer data is refused with a typed error naming field and value, and a
failing batch leaves nothing behind."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Customer, CustomerStatus, DuplicateCustomerError, InvalidFieldError, ServiceType
from models.customer_writes import add_customer, flush
from settings import Secret


def _budi(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "mikrotik_id": "mikrotik-001",
        "username": "budi",
        "name": "Budi Santoso",
        "service_type": "pppoe",
        "pppoe_username": "budi",
        "pppoe_password": "secret123",
        "status": "active",
    }
    fields.update(overrides)
    return fields


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0


def test_customer_add_roundtrips_normalised_values(pg_session: Session) -> None:
    with pg_session.begin():
        created = add_customer(
            pg_session,
            **_budi(
                static_ip="10.0.0.5/32",
                mac_address="AA-BB-CC-DD-EE-0F",
                hotspot_mac_address="aabb.ccdd.ee10",
            ),
        )
    pg_session.expunge_all()
    row = pg_session.get(Customer, created.id)
    assert row is not None
    assert (row.static_ip, row.mac_address, row.hotspot_mac_address) == (
        "10.0.0.5",
        "aa:bb:cc:dd:ee:0f",
        "aa:bb:cc:dd:ee:10",
    )
    assert row.service_type is ServiceType.PPPOE and row.status is CustomerStatus.ACTIVE
    assert row.pppoe_password == Secret("secret123")


def test_customer_duplicate_username_on_one_router_refused_and_batch_not_written(
    pg_session: Session,
) -> None:
    with pytest.raises(DuplicateCustomerError) as caught, pg_session.begin():
        add_customer(pg_session, **_budi())
        add_customer(pg_session, **_budi(username="budi", pppoe_username="budi2"))
    assert caught.value.field == "username" and caught.value.value == "budi"
    assert "duplicate username 'budi'" in str(caught.value)
    assert "mikrotik-001" in str(caught.value)
    assert _count(pg_session) == 0


def test_customer_duplicate_pppoe_username_on_one_router_refused(pg_session: Session) -> None:
    with pytest.raises(DuplicateCustomerError) as caught, pg_session.begin():
        add_customer(pg_session, **_budi())
        add_customer(pg_session, **_budi(username="budi.s"))
    assert (caught.value.field, caught.value.value) == ("pppoe_username", "budi")
    assert _count(pg_session) == 0


def test_customer_same_username_on_two_routers_allowed(pg_session: Session) -> None:
    with pg_session.begin():
        add_customer(pg_session, **_budi())
        add_customer(pg_session, **_budi(mikrotik_id="mikrotik-002"))
    assert _count(pg_session) == 2


def test_customer_database_unique_violation_translated_without_parameters(pg_session: Session) -> None:
    # Two rows flushed together bypass the pre-check: the constraint itself must answer.
    with pytest.raises(DuplicateCustomerError) as caught, pg_session.begin():
        pg_session.add_all(
            [
                Customer(**_budi(pppoe_username=None)),
                Customer(**_budi(pppoe_username=None, pppoe_password="other-secret")),
            ]
        )
        flush(pg_session)
    assert (caught.value.field, caught.value.value, caught.value.mikrotik_id) == (
        "username",
        "budi",
        "mikrotik-001",
    )
    assert "secret" not in str(caught.value) and caught.value.__cause__ is None
    assert _count(pg_session) == 0


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("service_type", "dsl", "must be one of pppoe, hotspot, static_ip"),
        ("status", "deleted", "must be one of active, suspended, inactive, pending"),
        ("static_ip", "10.0.0.256", "not an IP address"),
        ("assigned_ip", "budi", "not an IP address"),
        ("mac_address", "aa:bb:cc:dd:ee", "not a MAC address"),
        ("hotspot_mac_address", "gg:bb:cc:dd:ee:ff", "not a MAC address"),
        ("id", "not-a-uuid", "not a UUID"),
        ("username", "", "must be a non-empty string"),
        ("phone", "0" * 21, "longer than 20 characters"),
        ("mikrotik_id", "m" * 101, "longer than 100 characters"),
    ],
)
def test_customer_bad_field_refused_naming_field_and_value(
    pg_session: Session, field: str, value: str, reason: str
) -> None:
    with pytest.raises(InvalidFieldError) as caught, pg_session.begin():
        add_customer(pg_session, **_budi(username="first", pppoe_username="first"))
        add_customer(pg_session, **_budi(**{field: value}))
    assert caught.value.field == field and caught.value.value == value
    assert str(caught.value).startswith(f"invalid {field} {value!r}: {reason}")
    assert _count(pg_session) == 0


def test_customer_status_defaults_to_active_and_null_is_refused(pg_session: Session) -> None:
    with pg_session.begin():
        created = add_customer(pg_session, **{k: v for k, v in _budi().items() if k != "status"})
    assert created.status is CustomerStatus.ACTIVE  # the seed's column default
    with pytest.raises(InvalidFieldError) as caught:
        Customer(**_budi(status=None))
    assert caught.value.field == "status"


def test_customer_passwords_never_in_repr_or_errors(pg_session: Session) -> None:
    customer = Customer(**_budi())
    assert "secret123" not in repr(customer) and "secret123" not in repr(customer.pppoe_password)
    with pytest.raises(InvalidFieldError) as caught:
        Customer(**_budi(pppoe_password="x" * 101))
    assert "xxx" not in str(caught.value) and caught.value.value is None
    assert str(caught.value) == "invalid pppoe_password <hidden>: longer than 100 characters"


def test_customer_id_accepts_uuid_text(pg_session: Session) -> None:
    wanted = uuid.uuid4()
    with pg_session.begin():
        row = add_customer(pg_session, **_budi(id=str(wanted)))
    assert row.id == wanted
