"""The world a run needs in PostgreSQL and the environment: the simulator's router,
packages and customers as rows; settings applied to this process; stream times parsed.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

ROUTER_ID = "sim-1"
# Distinctive, so a leak into a log or a stream entry cannot hide behind "admin".
ROUTER_PASSWORD = "Rtr-pw-7Q2x!secret"


def apply_env(values: dict[str, str]) -> None:
    """Set variables in this process and drop every cached view of the settings."""
    from settings import get_settings

    os.environ.update(values)
    get_settings.cache_clear()


def seed_customers(url: str, sim: Any, password: str = ROUTER_PASSWORD) -> dict[str, dict[str, Any]]:
    """Routers/packages/customers rows for everything the simulator serves.

    `sim` answers `customers()` (routeros.simulator.Simulator, or bench.sim_process's
    child). Returns username -> the simulator's record plus "id" (the customer's uuid)."""
    from models import Customer, Package, Router
    from models.db import make_engine, session_factory

    data = sim.customers()
    engine = make_engine(url, pool_size=1, max_overflow=1)
    out: dict[str, dict[str, Any]] = {}
    try:
        with session_factory(engine).begin() as s:
            s.add(
                Router(
                    id=ROUTER_ID,
                    name="sim-router",
                    host=data["router"]["host"],
                    port=data["router"]["port"],
                    username="admin",
                    password=password,
                    tls=False,
                    tls_mode="verify",
                )
            )
            packages = {}
            for p in data["packages"]:
                package = Package(name=p["name"], download_bps=p["download_bps"], upload_bps=p["upload_bps"])
                s.add(package)
                packages[p["name"]] = package
            s.flush()
            for c in data["customers"]:
                cid = uuid.uuid4()
                s.add(
                    Customer(
                        id=cid,
                        mikrotik_id=ROUTER_ID,
                        username=c["username"],
                        name=c["name"],
                        phone=c["phone"],
                        email=c["email"],
                        service_type=c["service_type"],
                        pppoe_username=c["pppoe_username"],
                        pppoe_password=c["pppoe_password"],
                        pppoe_profile=c["pppoe_profile"],
                        hotspot_username=c["hotspot_username"],
                        hotspot_password=c["hotspot_password"],
                        hotspot_mac_address=c["hotspot_mac_address"],
                        static_ip=c["static_ip"],
                        mac_address=c["mac_address"],
                        status="active",
                        package_id=packages[c["package"]].id if c.get("package") else None,
                    )
                )
                out[c["username"]] = {**c, "id": str(cid)}
    finally:
        engine.dispose()
    return out


def parse_ts(value: str) -> float:
    """RFC 3339 UTC as the message writes it -> epoch seconds."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
