"""How to reach a router: its `routers` row, or the settings' default router.

The seed had one router configured through MIKROTIK_*; customers whose
`mikrotik_id` has no `routers` row still go there. A row never borrows MIKROTIK_*
values (its CA included): what it says is all there is for that router.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from models.router import Router
from settings import Secret, Settings, TlsMode, get_settings


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
    # The CA that signs the router's API-SSL certificate (tls_mode verify): a PEM
    # file's path or the PEM text; None = the system's trusted CAs.
    cafile: str | None = None
    # How the router holds text beyond ASCII (docs/routeros.md, Encodings).
    encoding: str = "utf-8"

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
            "cafile": self.cafile,
            "timeout": self.timeout,
            "name": self.id,
            "encoding": self.encoding,
        }


@dataclass(frozen=True)
class _SettingsRouter:
    """The MIKROTIK_* default router, shaped like a `routers` row."""

    name: str
    host: str
    port: int
    username: str
    password: Secret
    tls: bool
    tls_mode: TlsMode
    tls_ca: str | None
    encoding: str
    max_monitors: None = None


def router_config(session: Session, router_id: str, settings: Settings | None = None) -> RouterConfig:
    """The `routers` row for `router_id`, else the default router from settings."""
    settings = settings or get_settings()
    row = session.get(Router, router_id)
    source: Router | _SettingsRouter = row or _SettingsRouter(
        name=router_id,
        host=settings.mikrotik_host,
        port=settings.mikrotik_port,
        username=settings.mikrotik_user,
        password=settings.mikrotik_pass,
        tls=settings.mikrotik_tls,
        tls_mode=settings.mikrotik_tls_mode,
        tls_ca=settings.mikrotik_tls_cafile,
        encoding=settings.mikrotik_encoding,
    )
    return RouterConfig(
        id=router_id,
        name=source.name,
        host=source.host,
        port=source.port,
        username=source.username,
        password=source.password,
        tls=source.tls,
        tls_mode=str(source.tls_mode),
        timeout=settings.mikrotik_timeout,
        max_monitors=source.max_monitors,
        from_settings=row is None,
        cafile=source.tls_ca,
        encoding=source.encoding,
    )
