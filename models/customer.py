"""Customers: the seed's table, column for column, plus the package and overrides."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from models.base import Base, Timestamps
from models.enums import CustomerStatus, ServiceType, enum_values
from models.errors import InvalidFieldError
from models.types import Inet, MacAddr, SecretText
from models.validation import (
    normalize_inet,
    normalize_mac,
    parse_enum,
    parse_uuid,
    require_text,
)
from settings import Secret

if TYPE_CHECKING:
    from models.package import Package

# PostgreSQL enum type names (CREATE TYPE ...); on SQLite they become CHECKs.
SERVICE_TYPE_ENUM = "customer_service_type"
STATUS_ENUM = "customer_status"


class Customer(Timestamps, Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("mikrotik_id", "username"),
        UniqueConstraint("mikrotik_id", "pppoe_username"),
        UniqueConstraint("mikrotik_id", "hotspot_username"),
        Index(None, "mikrotik_id"),
        Index(None, "service_type"),
        Index(None, "status"),
        Index(None, "pppoe_username"),
        Index(None, "hotspot_username"),
        Index(None, "static_ip"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    mikrotik_id: Mapped[str] = mapped_column(String(50), nullable=False)
    username: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    service_type: Mapped[ServiceType] = mapped_column(
        Enum(
            ServiceType,
            name=SERVICE_TYPE_ENUM,
            values_callable=enum_values,
            create_constraint=True,
            validate_strings=True,
        ),
        nullable=False,
    )
    pppoe_username: Mapped[str | None] = mapped_column(String(100))
    pppoe_password: Mapped[Secret | None] = mapped_column(SecretText(255))
    pppoe_profile: Mapped[str | None] = mapped_column(String(100))
    hotspot_username: Mapped[str | None] = mapped_column(String(100))
    hotspot_password: Mapped[Secret | None] = mapped_column(SecretText(255))
    hotspot_mac_address: Mapped[str | None] = mapped_column(MacAddr)
    static_ip: Mapped[str | None] = mapped_column(Inet)
    assigned_ip: Mapped[str | None] = mapped_column(Inet)
    mac_address: Mapped[str | None] = mapped_column(MacAddr)
    last_online: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[CustomerStatus] = mapped_column(
        Enum(
            CustomerStatus,
            name=STATUS_ENUM,
            values_callable=enum_values,
            create_constraint=True,
            validate_strings=True,
        ),
        nullable=False,
        default=CustomerStatus.INACTIVE,
        server_default=CustomerStatus.INACTIVE.value,
    )
    # Added by revision 0002; nullable so the seed's rows stay valid.
    package_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("packages.id", ondelete="SET NULL"), index=True
    )
    interface_name: Mapped[str | None] = mapped_column(String(255))
    queue_name: Mapped[str | None] = mapped_column(String(255))

    package: Mapped[Package | None] = relationship(lazy="joined")

    @validates("id")
    def _check_id(self, key: str, value: Any) -> uuid.UUID:
        return parse_uuid(key, value)

    @validates("mikrotik_id", "username", "name")
    def _check_required(self, key: str, value: Any) -> str:
        return _fits(key, require_text(key, value))

    @validates(
        "phone",
        "email",
        "pppoe_username",
        "pppoe_profile",
        "hotspot_username",
        "interface_name",
        "queue_name",
    )
    def _check_optional(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidFieldError(key, value, "must be a string")
        # An empty username would resolve to '<pppoe->': store "not set" as NULL.
        return _fits(key, value) if value.strip() else None

    @validates("service_type")
    def _check_service_type(self, key: str, value: Any) -> ServiceType:
        return parse_enum(key, value, ServiceType)

    @validates("status")
    def _check_status(self, key: str, value: Any) -> CustomerStatus:
        return parse_enum(key, value, CustomerStatus)

    @validates("hotspot_mac_address", "mac_address")
    def _check_mac(self, key: str, value: Any) -> str | None:
        return normalize_mac(key, value)

    @validates("static_ip", "assigned_ip")
    def _check_inet(self, key: str, value: Any) -> str | None:
        return normalize_inet(key, value)

    @validates("pppoe_password", "hotspot_password")
    def _wrap_secret(self, key: str, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str):
            if len(value) > 255:
                raise InvalidFieldError(key, None, "longer than 255 characters")
            return Secret(value)
        raise InvalidFieldError(key, None, "must be a string")

    @property
    def display(self) -> str:
        """How messages name the customer: the username operators know them by."""
        return self.username or str(self.id)

    def __repr__(self) -> str:
        return (
            f"Customer(id={self.id!r}, mikrotik_id={self.mikrotik_id!r}, username={self.username!r}, "
            f"name={self.name!r}, service_type={self.service_type!r}, status={self.status!r})"
        )


def _fits(key: str, value: str) -> str:
    length = getattr(Customer.__table__.c[key].type, "length", None)
    if length is not None and len(value) > length:
        raise InvalidFieldError(key, value, f"longer than {length} characters")
    return value
