"""Customer -> router and target, for every service type, and every refusal."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session

from models import Customer, Package, Router
from models.resolution import (
    ConflictingOverride,
    CustomerNotActive,
    CustomerNotFound,
    InvalidCustomerId,
    MissingStaticIp,
    MissingUsername,
    RouterNotConfigured,
    resolve,
)
from settings import Secret, load_settings

DEFAULT_ROUTER = load_settings(
    {
        "MIKROTIK_HOST": "192.0.2.1",
        "MIKROTIK_PORT": "8729",
        "MIKROTIK_USER": "monitor",
        "MIKROTIK_PASS": "default-pass",
        "MIKROTIK_TLS": "true",
        "MIKROTIK_TLS_MODE": "anon-dh",
    },
    env_file="/nonexistent.env",
)


def _add(session: Session, **fields: Any) -> Customer:
    values: dict[str, Any] = {"mikrotik_id": "mikrotik-001", "name": "Budi Santoso", "status": "active"}
    values.update(fields)
    with session.begin():
        customer = Customer(**values)
        session.add(customer)
    return customer


@pytest.fixture
def router_row(pg_session: Session) -> Router:
    with pg_session.begin():
        router = Router(
            id="mikrotik-001",
            name="core-1",
            host="10.9.0.1",
            port=8728,
            username="api",
            password="router-pass",
            max_monitors=25,
        )
        package = Package(name="home-10M", download_bps=10_000_000, upload_bps=5_000_000)
        pg_session.add_all([router, package])
    return router


def test_resolution_pppoe_gives_dynamic_interface_on_its_router(
    pg_session: Session, router_row: Router
) -> None:
    package = pg_session.query(Package).one()
    pg_session.commit()
    customer = _add(
        pg_session, username="budi", service_type="pppoe", pppoe_username="budi.ppp", package_id=package.id
    )
    target = resolve(pg_session, str(customer.id), DEFAULT_ROUTER)
    assert (target.kind, target.name, target.target_address) == ("interface", "<pppoe-budi.ppp>", None)
    assert (target.router_id, target.router.host, target.router.port, target.router.username) == (
        "mikrotik-001",
        "10.9.0.1",
        8728,
        "api",
    )
    assert target.router.password == Secret("router-pass") and target.max_monitors == 25
    assert not target.router.from_settings
    assert (target.package_name, target.package_download_bps, target.package_upload_bps) == (
        "home-10M",
        10_000_000,
        5_000_000,
    )
    assert (target.customer_name, target.username, target.service_type) == ("Budi Santoso", "budi", "pppoe")
    assert target.router.endpoint_kwargs()["password"] == "router-pass"
    assert "router-pass" not in repr(target)


def test_resolution_hotspot_gives_dynamic_queue(pg_session: Session, router_row: Router) -> None:
    customer = _add(pg_session, username="sari", service_type="hotspot", hotspot_username="sari")
    target = resolve(pg_session, customer.id, DEFAULT_ROUTER)
    assert (target.kind, target.name, target.interface) == ("queue", "<hotspot-sari>", "<hotspot-sari>")
    assert target.package_name is None


def test_resolution_static_ip_gives_queue_by_target(pg_session: Session, router_row: Router) -> None:
    customer = _add(pg_session, username="toko", service_type="static_ip", static_ip="10.20.0.7")
    target = resolve(pg_session, customer, DEFAULT_ROUTER)
    assert (target.kind, target.name, target.target_address, target.queue_target) == (
        "queue-by-target",
        None,
        "10.20.0.7",
        "10.20.0.7/32",
    )


def test_resolution_unknown_router_falls_back_to_settings_default(pg_session: Session) -> None:
    customer = _add(
        pg_session, username="budi", service_type="pppoe", pppoe_username="budi", mikrotik_id="mikrotik-009"
    )
    target = resolve(pg_session, customer.id, DEFAULT_ROUTER)
    assert target.router.from_settings and target.router_id == "mikrotik-009"
    router = target.router
    assert (router.host, router.port, router.username, router.tls, router.tls_mode) == (
        "192.0.2.1",
        8729,
        "monitor",
        True,
        "anon-dh",
    )
    assert target.router.password == Secret("default-pass") and target.max_monitors is None


@pytest.mark.parametrize(
    ("override", "kind", "name"),
    [
        ({"interface_name": "vlan-biz-7"}, "interface", "vlan-biz-7"),
        ({"queue_name": "static-toko"}, "queue", "static-toko"),
    ],
)
def test_resolution_explicit_override_wins(
    pg_session: Session, override: dict[str, str], kind: str, name: str
) -> None:
    customer = _add(pg_session, username="toko", service_type="static_ip", static_ip="10.20.0.7", **override)
    target = resolve(pg_session, customer.id, DEFAULT_ROUTER)
    assert (target.kind, target.name, target.target_address) == (kind, name, None)


@pytest.mark.parametrize("value", ["budi", "1234", "", "6ba7b810-9dad-11d1-80b4-00c04fd430c"])
def test_resolution_non_uuid_id_refused(pg_session: Session, value: str) -> None:
    with pytest.raises(InvalidCustomerId) as caught:
        resolve(pg_session, value, DEFAULT_ROUTER)
    assert str(caught.value) == f"customer id {value!r} is not a UUID"
    assert caught.value.http_status == 400


def test_resolution_unknown_customer_not_found(pg_session: Session) -> None:
    missing = uuid.uuid4()
    with pytest.raises(CustomerNotFound) as caught:
        resolve(pg_session, missing, DEFAULT_ROUTER)
    assert str(caught.value) == f"no customer with id {missing}" and caught.value.http_status == 404


@pytest.mark.parametrize("status", ["suspended", "inactive", "pending"])
def test_resolution_non_active_customer_refused_with_status(pg_session: Session, status: str) -> None:
    customer = _add(pg_session, username="budi", service_type="pppoe", pppoe_username="budi", status=status)
    with pytest.raises(CustomerNotActive) as caught:
        resolve(pg_session, customer.id, DEFAULT_ROUTER)
    assert caught.value.status == status
    assert str(caught.value).startswith(f"customer 'budi' is {status}, not active")
    assert caught.value.http_status == 409


def test_resolution_pppoe_without_pppoe_username_refused(pg_session: Session) -> None:
    customer = _add(pg_session, username="budi", service_type="pppoe")
    with pytest.raises(MissingUsername) as caught:
        resolve(pg_session, customer.id, DEFAULT_ROUTER)
    assert str(caught.value) == "customer 'budi' is pppoe but has no pppoe_username"
    assert caught.value.field == "pppoe_username" and caught.value.http_status == 422


def test_resolution_hotspot_without_hotspot_username_uses_username(pg_session: Session) -> None:
    # The seed's sample customer3: a hotspot customer known only by its username.
    customer = _add(pg_session, username="customer3", service_type="hotspot")
    target = resolve(pg_session, customer.id, DEFAULT_ROUTER)
    assert (target.kind, target.name, target.interface) == (
        "queue",
        "<hotspot-customer3>",
        "<hotspot-customer3>",
    )


def test_resolution_static_ip_without_address_refused(pg_session: Session) -> None:
    customer = _add(pg_session, username="toko", service_type="static_ip")
    with pytest.raises(MissingStaticIp) as caught:
        resolve(pg_session, customer.id, DEFAULT_ROUTER)
    assert str(caught.value) == "customer 'toko' is static_ip but has no static_ip"


def test_resolution_both_overrides_refused(pg_session: Session) -> None:
    customer = _add(
        pg_session,
        username="toko",
        service_type="static_ip",
        interface_name="ether5",
        queue_name="static-toko",
    )
    with pytest.raises(ConflictingOverride, match="both interface_name 'ether5' and queue_name"):
        resolve(pg_session, customer.id, DEFAULT_ROUTER)


def test_resolution_router_without_host_refused(pg_session: Session) -> None:
    no_host = dataclasses.replace(DEFAULT_ROUTER, mikrotik_host="")
    customer = _add(pg_session, username="budi", service_type="pppoe", pppoe_username="budi")
    with pytest.raises(RouterNotConfigured, match="router 'mikrotik-001' has no host"):
        resolve(pg_session, customer.id, no_host)
