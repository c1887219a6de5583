"""Customers: the seed's table, column for column, plus the package and overrides."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from models.base import Base
from models.enums import CustomerStatus, ServiceType
from models.errors import InvalidFieldError
from models.types import CustomerStatusType, Inet, MacAddr, SecretText, enum_type
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


def _seed_unique(*columns: str) -> UniqueConstraint:
    # The seed's UNIQUE (...) are unnamed: these are the names PostgreSQL gave them.
    return UniqueConstraint(*columns, name=f"customers_{'_'.join(columns)}_key")


# What GET /api/customers?q= searches, a substring of any (web/queries/customers.py).
SEARCHED_COLUMNS = ("name", "username", "pppoe_username", "hotspot_username")


class Customer(Base):
    __tablename__ = "customers"
    # Names exactly as the seed's script creates them (revision 0001), so a seed-built
    # database and a migrated one are the same; ix_customers_static_ip comes from 0002.
    __table_args__ = (
        PrimaryKeyConstraint("id", name="customers_pkey"),
        _seed_unique("mikrotik_id", "username"),
        _seed_unique("mikrotik_id", "pppoe_username"),
        _seed_unique("mikrotik_id", "hotspot_username"),
        Index("idx_customers_mikrotik_id", "mikrotik_id"),
        Index("idx_customers_username", "username"),
        Index("idx_customers_pppoe", "pppoe_username"),
        Index("idx_customers_hotspot", "hotspot_username"),
        Index("idx_customers_service_type", "service_type"),
        Index("idx_customers_status", "status"),
        Index("idx_customers_mac", "mac_address"),
        Index(None, "static_ip"),
        # Revision 0010: the list's order, and on PostgreSQL the substring search's
        # trigram indexes (SQLite has no pg_trgm: its search stays a scan).
        Index("ix_customers_name_id", "name", "id"),
        *(
            Index(
                f"ix_customers_{column}_trgm",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            ).ddl_if(dialect="postgresql")
            for column in SEARCHED_COLUMNS
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    mikrotik_id: Mapped[str] = mapped_column(String(100), nullable=False)
    username: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(255))
    service_type: Mapped[ServiceType] = mapped_column(
        enum_type(ServiceType, "service_type", native=True), nullable=False
    )
    pppoe_username: Mapped[str | None] = mapped_column(String(100))
    pppoe_password: Mapped[Secret | None] = mapped_column(SecretText(100))
    pppoe_profile: Mapped[str | None] = mapped_column(String(100))
    hotspot_username: Mapped[str | None] = mapped_column(String(100))
    hotspot_password: Mapped[Secret | None] = mapped_column(SecretText(100))
    hotspot_mac_address: Mapped[str | None] = mapped_column(MacAddr)
    static_ip: Mapped[str | None] = mapped_column(Inet)
    assigned_ip: Mapped[str | None] = mapped_column(Inet)
    mac_address: Mapped[str | None] = mapped_column(MacAddr)
    last_online: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Nullable in the seed's schema; a NULL reads as active (see CustomerStatusType).
    # Two defaults on purpose: the column's is the seed's newest, 'inactive' (revision
    # 0005), for rows other writers insert without a status (the Go collector, SQL by
    # hand); a customer created through the models is one to monitor, so 'active'.
    status: Mapped[CustomerStatus] = mapped_column(
        CustomerStatusType(),
        nullable=True,
        default=CustomerStatus.ACTIVE,
        server_default=CustomerStatus.INACTIVE.value,
    )
    # The seed's timestamps are nullable (its trigger keeps updated_at on PostgreSQL;
    # onupdate covers ORM updates on SQLite).
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
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
            return Secret(_fits(key, value))
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
    # InvalidFieldError itself hides the value of a password field.
    length = getattr(Customer.__table__.c[key].type, "length", None)
    if length is not None and len(value) > length:
        raise InvalidFieldError(key, value, f"longer than {length} characters")
    return value
