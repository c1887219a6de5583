"""The web tests' database: a router, a package and customers (passwords set, so tests
can prove they never come back), seeded into the schema of the `web_db` fixture."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from harness.seed import ROUTER_PASSWORD
from models import Customer, Package, Router
from models.db import make_engine, session_factory

PPPOE_PASSWORD = "Pppoe-pw-K9z!leak"
HOTSPOT_PASSWORD = "Hotspot-pw-3Jq!leak"
ROUTER_ID = "r1"
OTHER_ROUTER = "mikrotik-002"  # named by customers, no routers row: the settings' default router


@dataclass
class WebDb:
    """The seeded schema's URL, the test Redis database and who was seeded."""

    url: str
    redis: redis.Redis
    customers: dict[str, str]  # username -> id
    package_id: int

    def id(self, username: str) -> str:
        return self.customers[username]


def seed(url: str) -> tuple[dict[str, str], int]:
    """Seed the router, the package and the customers; their ids by username, the package's id."""
    engine = make_engine(url, pool_size=1, max_overflow=1)
    people = [
        # username, service, status, router, extra fields
        (
            "alice",
            "pppoe",
            "active",
            ROUTER_ID,
            {"pppoe_username": "alice", "pppoe_password": PPPOE_PASSWORD},
        ),
        (
            "bob",
            "hotspot",
            "active",
            ROUTER_ID,
            {"hotspot_username": "bob", "hotspot_password": HOTSPOT_PASSWORD},
        ),
        ("carol", "static_ip", "active", OTHER_ROUTER, {"static_ip": "10.0.0.5"}),
        ("dave", "pppoe", "suspended", ROUTER_ID, {"pppoe_username": "dave"}),
        ("erin", "pppoe", "active", ROUTER_ID, {}),  # no pppoe_username: cannot be resolved
        ("frank", "pppoe", "active", ROUTER_ID, {"pppoe_username": "frank"}),
        ("grace", "pppoe", "active", ROUTER_ID, {"pppoe_username": "grace"}),
    ]
    out: dict[str, str] = {}
    try:
        with session_factory(engine).begin() as s:
            s.add(Router(id=ROUTER_ID, name="core-1", host="127.0.0.1", port=1, password=ROUTER_PASSWORD))
            package = Package(name="home-50M", download_bps=50_000_000, upload_bps=20_000_000)
            s.add(package)
            s.flush()
            for username, service, status, router, extra in people:
                cid = uuid.uuid4()
                s.add(
                    Customer(
                        id=cid,
                        mikrotik_id=router,
                        username=username,
                        name=f"{username.title()} Example",
                        service_type=service,
                        status=status,
                        package_id=package.id,
                        **extra,
                    )
                )
                out[username] = str(cid)
            package_id = package.id
    finally:
        engine.dispose()
    return out, package_id
