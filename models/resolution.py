"""Customer -> what to watch on which router, or an error an operator can act on.

pppoe      -> interface `<pppoe-{pppoe_username}>` (no pppoe_username: an error)
hotspot    -> the dynamic simple queue `<hotspot-{hotspot_username}>`, or
              `<hotspot-{username}>` when hotspot_username is empty
static_ip  -> "queue-by-target": the simple queue whose target is static_ip/32
An explicit `interface_name` or `queue_name` on the customer wins over all three.

The hotspot fallback is the seed's own reading: its sample hotspot customer
(customer3) has no hotspot_username, so its login name is its username.
A PPPoE secret has no such convention, so a missing pppoe_username stays an error.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from models.customer import Customer
from models.enums import CustomerStatus, ServiceType
from models.router_config import RouterConfig, router_config
from settings import Settings

TargetKind = Literal["interface", "queue", "queue-by-target"]


class ResolutionError(Exception):
    """Base: the customer cannot be monitored. `http_status` is the web layer's hint."""

    http_status = 422

    def __init__(self, message: str, customer_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.customer_id = customer_id


class InvalidCustomerId(ResolutionError):
    http_status = 400

    def __init__(self, value: object) -> None:
        super().__init__(f"customer id {str(value)!r} is not a UUID")
        self.value = value


class CustomerNotFound(ResolutionError):
    http_status = 404

    def __init__(self, customer_id: uuid.UUID) -> None:
        super().__init__(f"no customer with id {customer_id}", str(customer_id))


class CustomerNotActive(ResolutionError):
    http_status = 409

    def __init__(self, customer: Customer) -> None:
        status = str(customer.status)
        super().__init__(
            f"customer {customer.display!r} is {status}, not active: set the status to active to monitor it",
            str(customer.id),
        )
        self.status = status


class MissingUsername(ResolutionError):
    def __init__(self, customer: Customer, field: str) -> None:
        super().__init__(
            f"customer {customer.display!r} is {customer.service_type} but has no {field}",
            str(customer.id),
        )
        self.field = field


class MissingStaticIp(ResolutionError):
    def __init__(self, customer: Customer) -> None:
        super().__init__(f"customer {customer.display!r} is static_ip but has no static_ip", str(customer.id))
        self.field = "static_ip"


class ConflictingOverride(ResolutionError):
    def __init__(self, customer: Customer) -> None:
        super().__init__(
            f"customer {customer.display!r} has both interface_name {customer.interface_name!r} "
            f"and queue_name {customer.queue_name!r}: keep only one",
            str(customer.id),
        )


class UnknownServiceType(ResolutionError):
    def __init__(self, customer: Customer) -> None:
        super().__init__(
            f"customer {customer.display!r} has unknown service_type {customer.service_type!r} "
            "(expected pppoe, hotspot or static_ip)",
            str(customer.id),
        )


class RouterNotConfigured(ResolutionError):
    def __init__(self, customer: Customer, detail: str) -> None:
        super().__init__(
            f"customer {customer.display!r}: router {customer.mikrotik_id!r} {detail}",
            str(customer.id),
        )


@dataclass(frozen=True)
class MonitorTarget:
    customer_id: uuid.UUID
    customer_name: str
    username: str
    service_type: ServiceType
    router: RouterConfig
    kind: TargetKind
    name: str | None  # interface or queue name (kinds "interface" and "queue")
    target_address: str | None  # the static IP (kind "queue-by-target")
    package_name: str | None
    package_download_bps: int | None
    package_upload_bps: int | None
    # For the monitor's ping (tasks/pinger.py): the login the router shows in
    # /ppp/active or /ip/hotspot/active (PPPoE, hotspot), or the fixed address (static).
    login: str | None = None
    address: str | None = None

    @property
    def router_id(self) -> str:
        return self.router.id

    @property
    def max_monitors(self) -> int | None:
        return self.router.max_monitors

    @property
    def queue_target(self) -> str | None:
        """The simple-queue `target` to look for, e.g. '10.0.0.5/32' (queue-by-target only)."""
        if self.target_address is None:
            return None
        return ipaddress.ip_interface(self.target_address).with_prefixlen

    @property
    def interface(self) -> str:
        """What the stream message's `interface` field shows."""
        return self.name if self.name is not None else (self.queue_target or "")


def resolve(
    session: Session, customer: Customer | uuid.UUID | str, settings: Settings | None = None
) -> MonitorTarget:
    """Resolve `customer` (a row, a UUID or its text) to a MonitorTarget.

    Raises a ResolutionError subclass naming what the operator must fix.
    """
    if not isinstance(customer, Customer):
        customer = _load(session, customer)
    if customer.status != CustomerStatus.ACTIVE:
        raise CustomerNotActive(customer)
    kind, name, address = _target(customer)
    if not customer.mikrotik_id or not customer.mikrotik_id.strip():
        raise RouterNotConfigured(customer, "is empty: set the customer's mikrotik_id")
    router = router_config(session, customer.mikrotik_id, settings)
    if not router.host:
        raise RouterNotConfigured(customer, "has no host (set it, or MIKROTIK_HOST)")
    package = customer.package
    return MonitorTarget(
        customer_id=customer.id,
        customer_name=customer.name,
        username=customer.username,
        service_type=ServiceType(customer.service_type),
        router=router,
        kind=kind,
        name=name,
        target_address=address,
        package_name=package.name if package else None,
        package_download_bps=package.download_bps if package else None,
        package_upload_bps=package.upload_bps if package else None,
        login=_login(customer),
        address=_static_address(customer),
    )


def _static_address(customer: Customer) -> str | None:
    if customer.service_type == ServiceType.STATIC_IP and customer.static_ip:
        return str(customer.static_ip)
    return None


def _login(customer: Customer) -> str | None:
    if customer.service_type == ServiceType.PPPOE:
        return customer.pppoe_username or None
    if customer.service_type == ServiceType.HOTSPOT:
        return customer.hotspot_username or customer.username
    return None


def _load(session: Session, customer_id: uuid.UUID | str) -> Customer:
    if isinstance(customer_id, uuid.UUID):
        key = customer_id
    else:
        try:
            key = uuid.UUID(str(customer_id).strip())
        except ValueError:
            raise InvalidCustomerId(customer_id) from None
    row = session.get(Customer, key)
    if row is None:
        raise CustomerNotFound(key)
    return row


def _target(customer: Customer) -> tuple[TargetKind, str | None, str | None]:
    if customer.interface_name and customer.queue_name:
        raise ConflictingOverride(customer)
    if customer.interface_name:
        return "interface", customer.interface_name, None
    if customer.queue_name:
        return "queue", customer.queue_name, None
    service = customer.service_type
    if service == ServiceType.PPPOE:
        if not customer.pppoe_username:
            raise MissingUsername(customer, "pppoe_username")
        return "interface", f"<pppoe-{customer.pppoe_username}>", None
    if service == ServiceType.HOTSPOT:
        return "queue", f"<hotspot-{customer.hotspot_username or customer.username}>", None
    if service == ServiceType.STATIC_IP:
        if not customer.static_ip:
            raise MissingStaticIp(customer)
        return "queue-by-target", None, customer.static_ip
    raise UnknownServiceType(customer)
