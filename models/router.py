"""Routers: where a customer's `mikrotik_id` points to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from models.base import Base, Timestamps
from models.enums import TlsMode
from models.errors import InvalidFieldError
from models.types import SecretText, enum_type
from models.validation import normalize_ca, normalize_encoding, parse_enum, require_text
from settings import Secret


class Router(Timestamps, Base):
    __tablename__ = "routers"
    __table_args__ = (
        CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),
        CheckConstraint("max_monitors IS NULL OR max_monitors > 0", name="max_monitors_positive"),
        CheckConstraint("max_api_sessions IS NULL OR max_api_sessions > 0", name="max_api_sessions_positive"),
    )

    # The text customers.mikrotik_id holds, e.g. 'mikrotik-001'. Not a foreign key
    # from customers: the seed lets a customer name a router that only settings know.
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    port: Mapped[int] = mapped_column(Integer, nullable=False, default=8728)
    username: Mapped[str] = mapped_column(String(100), nullable=False, default="admin")
    password: Mapped[Secret] = mapped_column(SecretText, nullable=False, default=Secret(""))
    tls: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    tls_mode: Mapped[TlsMode] = mapped_column(
        enum_type(TlsMode, "router_tls_mode", native=False), nullable=False, default=TlsMode.VERIFY
    )
    max_monitors: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Revision 0003. The CA that signs the router's API-SSL certificate, for tls_mode
    # verify: a PEM file's absolute path or the PEM text itself (certificates only).
    tls_ca: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Revision 0004. How the router holds names beyond ASCII: utf-8, or the code page
    # they were typed in through Winbox (docs/routeros.md, Encodings).
    encoding: Mapped[str] = mapped_column(String(32), nullable=False, default="utf-8", server_default="utf-8")
    # Revision 0009. API sessions from all monitors workers together (router affinity,
    # tasks/affinity.py); NULL: ROUTER_MAX_API_SESSIONS.
    max_api_sessions: Mapped[int | None] = mapped_column(Integer, nullable=True)

    @validates("id", "name", "host", "username")
    def _check_text(self, key: str, value: Any) -> str:
        return require_text(key, value)

    @validates("port")
    def _check_port(self, key: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
            return value
        raise InvalidFieldError(key, value, "must be a TCP port (1-65535)")

    @validates("max_monitors")
    def _check_max_monitors(self, key: str, value: Any) -> int | None:
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        raise InvalidFieldError(key, value, "must be a positive integer or empty (no cap)")

    @validates("max_api_sessions")
    def _check_max_api_sessions(self, key: str, value: Any) -> int | None:
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        raise InvalidFieldError(key, value, "must be a positive integer or empty (ROUTER_MAX_API_SESSIONS)")

    @validates("tls_ca")
    def _check_tls_ca(self, key: str, value: Any) -> str | None:
        return normalize_ca(key, value)

    @validates("encoding")
    def _check_encoding(self, key: str, value: Any) -> str:
        return normalize_encoding(key, value)

    @validates("tls_mode")
    def _check_tls_mode(self, key: str, value: Any) -> TlsMode:
        return parse_enum(key, value, TlsMode)

    @validates("password")
    def _wrap_password(self, key: str, value: Any) -> Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise InvalidFieldError(key, None, "must be a string")

    def __repr__(self) -> str:
        # The password is a Secret, but say so explicitly: it is never shown.
        return (
            f"Router(id={self.id!r}, name={self.name!r}, host={self.host!r}, port={self.port!r}, "
            f"username={self.username!r}, password=<hidden>, tls={self.tls!r}, "
            f"tls_mode={self.tls_mode!r}, tls_ca={_ca_label(self.tls_ca)}, "
            f"max_monitors={self.max_monitors!r}, encoding={self.encoding!r})"
        )


def _ca_label(tls_ca: str | None) -> str:
    # A PEM blob would swamp every log line the repr lands in.
    if tls_ca is None or not tls_ca.startswith("-----"):
        return repr(tls_ca)
    return "<PEM text>"
