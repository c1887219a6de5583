"""Rows an engine test adds beside the seeded ones (tasks.sessions, into the module's
schema): a router for another simulator, PPPoE customers on a router."""

from __future__ import annotations

import uuid
from typing import Any

from harness.seed import ROUTER_PASSWORD
from models import Customer, Router
from tasks import sessions


def add_router(router_id: str, port: int, host: str = "127.0.0.1", **fields: Any) -> None:
    """A routers row for the router at host:port, which takes ROUTER_PASSWORD; `fields`:
    more Router columns (encoding, tls...)."""
    with sessions.db() as s:
        s.add(Router(id=router_id, name=router_id, host=host, port=port, password=ROUTER_PASSWORD, **fields))


def add_pppoe_customer(
    router_id: str, username: str, name: str, pppoe_username: str | None = None, status: str = "active"
) -> str:
    """A PPPoE customer on the router, watched as `pppoe_username` (default: its username); its id."""
    with sessions.db() as s:
        customer = Customer(
            id=uuid.uuid4(),
            mikrotik_id=router_id,
            username=username,
            name=name,
            service_type="pppoe",
            pppoe_username=pppoe_username or username,
            status=status,
        )
        s.add(customer)
        return str(customer.id)
