"""A router's customers by the names the router knows them by: the watch's lookups.

The router watch meets customers as the router names them: a PPPoE login in
`/ppp/active`, a hotspot user in `/ip/hotspot/active`, a `<pppoe-…>` interface, a
`<hotspot-…>` or static customer's simple queue. `Directory` holds one dict per name
kind, built in one query of the router's customers, so each cycle costs a dict look-up
per row (O(customers)), not a query.

Sessions are matched by login (`pppoe_username`; `hotspot_username`, or `username`
for a hotspot customer without one: models/resolution.py's reading), on that router
only. Rates are attributed to what each customer's monitor would watch
(models/resolution.py): the `<pppoe-{pppoe_username}>` interface, the
`<hotspot-{login}>` queue, the static customer's queue by target `static_ip/32`, or
the customer's explicit `interface_name` / `queue_name`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Customer, Package
from models.enums import ServiceType
from models.router_config import RouterConfig, router_config
from settings import Settings
from tasks.message import CustomerMeta, RouterMeta


@dataclass
class Directory:
    router: RouterMeta
    config: RouterConfig
    pppoe: dict[str, CustomerMeta] = field(default_factory=dict)  # PPPoE login -> customer
    hotspot: dict[str, CustomerMeta] = field(default_factory=dict)  # hotspot login -> customer
    interfaces: dict[str, CustomerMeta] = field(default_factory=dict)  # interface name -> customer
    queues: dict[str, CustomerMeta] = field(default_factory=dict)  # simple-queue name -> customer
    targets: dict[str, CustomerMeta] = field(default_factory=dict)  # queue target "ip/32" -> customer
    by_id: dict[str, CustomerMeta] = field(default_factory=dict)  # every customer of the router

    def login(self, kind: str, name: str) -> CustomerMeta | None:
        """The customer of a session ("pppoe" or "hotspot") by its login."""
        return (self.pppoe if kind == "pppoe" else self.hotspot).get(name)


def queue_target(address: str) -> str | None:
    """A static IP as a simple queue's target shows it ("10.0.0.5/32"); None if invalid."""
    try:
        return ipaddress.ip_interface(address).with_prefixlen
    except ValueError:
        return None


def load_directory(session: Session, router_id: str, settings: Settings | None = None) -> Directory:
    """Every customer of `router_id` (whatever its status: a suspended customer's session
    is still theirs, not an unknown one), in one query."""
    config = router_config(session, router_id, settings)
    router = RouterMeta(router=router_id, router_name=config.name or router_id)
    directory = Directory(router=router, config=config)
    rows = session.execute(
        select(
            Customer.id,
            Customer.name,
            Customer.username,
            Customer.service_type,
            Customer.pppoe_username,
            Customer.hotspot_username,
            Customer.static_ip,
            Customer.interface_name,
            Customer.queue_name,
            Package.name,
            Package.download_bps,
            Package.upload_bps,
        )
        .outerjoin(Package, Customer.package_id == Package.id)
        .where(Customer.mikrotik_id == router_id)
    )
    for cid, name, username, service, pppoe, hotspot, static_ip, iface, queue, pkg, down, up in rows:
        service = ServiceType(service)
        hotspot_login = hotspot or (username if service == ServiceType.HOTSPOT else None)
        meta = CustomerMeta(
            customer_id=str(cid),
            customer_name=name,
            username=username,
            service_type=str(service),
            interface="",
            router=router.router_name,
            package=pkg,
            package_download_bps=down,
            package_upload_bps=up,
        )
        directory.by_id[meta.customer_id] = meta
        if pppoe:
            directory.pppoe[pppoe] = meta
        if hotspot_login:
            directory.hotspot[hotspot_login] = meta
        # What this customer's monitor would watch (models.resolution._target).
        if iface:
            directory.interfaces[iface] = meta
        elif queue:
            directory.queues[queue] = meta
        elif service == ServiceType.PPPOE and pppoe:
            directory.interfaces[f"<pppoe-{pppoe}>"] = meta
        elif service == ServiceType.HOTSPOT and hotspot_login:
            directory.queues[f"<hotspot-{hotspot_login}>"] = meta
        elif service == ServiceType.STATIC_IP and static_ip:
            target = queue_target(static_ip)
            if target is not None:
                directory.targets[target] = meta
    return directory
