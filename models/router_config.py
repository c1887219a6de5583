"""How to reach a router: its `routers` row, or the settings' default router.

The seed had one router configured through MIKROTIK_*; customers whose
`mikrotik_id` has no `routers` row still go there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from models.router import Router
from settings import Secret, Settings, get_settings


@dataclass(frozen=True)
class RouterConfig:
    id: str
    name: str
    host: str
    port: int
    username: str
    password: Secret
    tls: bool
    tls_mode: str
    timeout: float
    max_monitors: int | None
    from_settings: bool  # True when no routers row exists and MIKROTIK_* was used

    def endpoint_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for routeros.RouterEndpoint (which masks the password itself).

        models may not import routeros, so the caller builds the endpoint:
        `RouterEndpoint(**config.endpoint_kwargs())`.
        """
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password.get(),
            "tls": self.tls,
            "tls_mode": self.tls_mode,
            "timeout": self.timeout,
            "name": self.id,
        }


def router_config(session: Session, router_id: str, settings: Settings | None = None) -> RouterConfig:
    """The `routers` row for `router_id`, else the default router from settings."""
    settings = settings or get_settings()
    row = session.get(Router, router_id)
    if row is not None:
        return RouterConfig(
            id=row.id,
            name=row.name,
            host=row.host,
            port=row.port,
            username=row.username,
            password=row.password,
            tls=row.tls,
            tls_mode=str(row.tls_mode),
            timeout=settings.mikrotik_timeout,
            max_monitors=row.max_monitors,
            from_settings=False,
        )
    return RouterConfig(
        id=router_id,
        name=router_id,
        host=settings.mikrotik_host,
        port=settings.mikrotik_port,
        username=settings.mikrotik_user,
        password=settings.mikrotik_pass,
        tls=settings.mikrotik_tls,
        tls_mode=settings.mikrotik_tls_mode,
        timeout=settings.mikrotik_timeout,
        max_monitors=None,
        from_settings=True,
    )
