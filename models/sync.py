"""Idempotent upserts of packages, routers and customers from an outside source
(a router's tables, the simulator's customers JSON).

What an operator owns is never overwritten: on an existing customer the import
leaves name, status, username, service_type and the interface/queue overrides
alone, and fills phone, email, mac_address and the pppoe/hotspot usernames only
when they are empty. What the router owns (passwords, profile, hotspot MAC,
static IP, package) follows the source where the source gives it: a field a
record leaves None is left as it is (the importer leaves passwords out unless
asked for them). A new customer gets everything the record has.
Run it all in one transaction: on a bad record nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.customer import Customer
from models.customer_writes import flush
from models.enums import CustomerStatus, ServiceType
from models.errors import DataError, DuplicateCustomerError, InvalidFieldError
from models.package import Package
from models.router import Router
from models.validation import normalize_inet, normalize_mac, parse_enum
from settings import Secret

PROGRESS_EVERY = 500

# Fields the source (router) is authoritative for, refreshed on every run.
SOURCE_OWNED = (
    "pppoe_password",
    "pppoe_profile",
    "hotspot_password",
    "hotspot_mac_address",
    "static_ip",
)
# Fields an operator may have filled in: the import only fills them when empty.
FILL_IF_EMPTY = ("phone", "email", "mac_address", "pppoe_username", "hotspot_username")


@dataclass
class CustomerRecord:
    """One customer as a source describes it; `source` says where, for error messages."""

    username: str
    service_type: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    pppoe_username: str | None = None
    pppoe_password: str | None = field(default=None, repr=False)
    pppoe_profile: str | None = None
    hotspot_username: str | None = None
    hotspot_password: str | None = field(default=None, repr=False)
    hotspot_mac_address: str | None = None
    static_ip: str | None = None
    mac_address: str | None = None
    package: str | None = None
    status: str = CustomerStatus.ACTIVE.value  # for new rows only
    source: str = ""


@dataclass(frozen=True)
class PackageSpec:
    name: str
    download_bps: int
    upload_bps: int


@dataclass
class SyncCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def summary(self) -> str:
        text = f"created={self.created} updated={self.updated} unchanged={self.unchanged}"
        return text + (f" skipped={self.skipped}" if self.skipped else "")


class RecordError(ValueError):
    """A source record was refused; says which record and why (never a password)."""

    def __init__(self, source: str, error: DataError) -> None:
        self.source = source
        self.error = error
        super().__init__(f"{source}: {error}" if source else str(error))


def upsert_packages(session: Session, specs: Iterable[PackageSpec]) -> SyncCounts:
    """Create or update packages by name (speeds follow the source)."""
    counts = SyncCounts()
    existing = {p.name: p for p in session.scalars(select(Package))}
    for spec in specs:
        row = existing.get(spec.name)
        if row is None:
            row = Package(name=spec.name, download_bps=spec.download_bps, upload_bps=spec.upload_bps)
            session.add(row)
            existing[spec.name] = row
            counts.add("created")
        elif (row.download_bps, row.upload_bps) != (spec.download_bps, spec.upload_bps):
            row.download_bps, row.upload_bps = spec.download_bps, spec.upload_bps
            counts.add("updated")
        else:
            counts.add("unchanged")
    flush(session)
    return counts


def upsert_router(session: Session, router_id: str, **fields: Any) -> str:
    """Create or update one routers row; returns 'created', 'updated' or 'unchanged'.

    On an existing row `name` is kept (an operator may have renamed it).
    """
    row = session.get(Router, router_id)
    if row is None:
        session.add(Router(id=router_id, **fields))
        flush(session)
        return "created"
    changed = False
    for key, value in fields.items():
        if key == "name":
            continue
        before = getattr(row, key)
        setattr(row, key, value)  # the validators normalise it (Secret, CA text) first
        changed = changed or getattr(row, key) != before
    flush(session)
    return "updated" if changed else "unchanged"


def upsert_customers(
    session: Session,
    mikrotik_id: str,
    records: Sequence[CustomerRecord],
    *,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = PROGRESS_EVERY,
) -> SyncCounts:
    """Create or update customers of router `mikrotik_id` from `records`.

    An existing customer is found by its router-side identity (pppoe_username,
    hotspot_username, or static_ip for static_ip customers), else by username.
    Raises RecordError on the first bad record; the caller rolls back.
    """
    counts = SyncCounts()
    index = _CustomerIndex(session, mikrotik_id)
    packages = {p.name: p for p in session.scalars(select(Package))}
    total = len(records)
    seen: set[str] = set()
    for done, record in enumerate(records, start=1):
        try:
            if record.username in seen:
                # Two source records for one customer: the source is wrong, not us.
                raise DuplicateCustomerError("username", record.username, mikrotik_id)
            seen.add(record.username)
            outcome = _upsert_one(session, mikrotik_id, record, index, packages, counts)
        except DataError as exc:
            raise RecordError(record.source or f"customer {record.username!r}", exc) from None
        counts.add(outcome)
        if done % progress_every == 0:
            flush(session)
            if progress is not None:
                progress(done, total)
    flush(session)
    if progress is not None and total >= progress_every and total % progress_every:
        progress(total, total)
    return counts


class _CustomerIndex:
    """The router's existing customers, by every key a record may match on."""

    def __init__(self, session: Session, mikrotik_id: str) -> None:
        self.by: dict[str, dict[str, Customer]] = {
            "username": {},
            "pppoe_username": {},
            "hotspot_username": {},
            "static_ip": {},
        }
        for row in session.scalars(select(Customer).where(Customer.mikrotik_id == mikrotik_id)):
            self.add(row)

    def add(self, row: Customer) -> None:
        for key, table in self.by.items():
            value = getattr(row, key)
            if value is None:
                continue
            if key == "static_ip" and row.service_type != ServiceType.STATIC_IP:
                continue
            table.setdefault(value, row)

    def match(self, record: CustomerRecord, service: ServiceType) -> Customer | None:
        key = {
            ServiceType.PPPOE: ("pppoe_username", record.pppoe_username),
            ServiceType.HOTSPOT: ("hotspot_username", record.hotspot_username),
            ServiceType.STATIC_IP: ("static_ip", normalize_inet("static_ip", record.static_ip)),
        }[service]
        if key[1]:
            row = self.by[key[0]].get(key[1])
            if row is not None:
                return row
        return self.by["username"].get(record.username)


def _upsert_one(
    session: Session,
    mikrotik_id: str,
    record: CustomerRecord,
    index: _CustomerIndex,
    packages: dict[str, Package],
    counts: SyncCounts,
) -> str:
    service = parse_enum("service_type", record.service_type, ServiceType)
    package = None
    if record.package:
        package = packages.get(record.package)
        if package is None:
            raise InvalidFieldError("package", record.package, "no package with this name")
    row = index.match(record, service)
    if row is None:
        fields = {name: getattr(record, name) for name in SOURCE_OWNED + FILL_IF_EMPTY}
        row = Customer(
            mikrotik_id=mikrotik_id,
            username=record.username,
            name=record.name or record.username,
            service_type=service,
            status=record.status,
            package_id=package.id if package else None,
            **fields,
        )
        for key in ("pppoe_username", "hotspot_username"):
            value = getattr(row, key)
            if value is not None and value in index.by[key]:
                raise DuplicateCustomerError(key, value, mikrotik_id)
        session.add(row)
        index.add(row)
        return "created"
    if row.service_type != service:
        counts.warnings.append(
            f"{record.source or record.username}: skipped, username {record.username!r} belongs to "
            f"a {row.service_type} customer on {mikrotik_id!r}"
        )
        return "skipped"
    changed = False
    for name in SOURCE_OWNED:
        value = _normal(name, getattr(record, name))
        if value is not None and getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    for name in FILL_IF_EMPTY:
        value = _normal(name, getattr(record, name))
        if value is not None and getattr(row, name) is None:
            setattr(row, name, value)
            changed = True
    if package is not None and row.package_id != package.id:
        row.package_id = package.id
        row.package = package
        changed = True
    return "updated" if changed else "unchanged"


def _normal(name: str, value: Any) -> Any:
    """The value as the row would hold it, so equal data compares equal."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if name in ("pppoe_password", "hotspot_password"):
        return value if isinstance(value, Secret) else Secret(value)
    if name in ("hotspot_mac_address", "mac_address"):
        return normalize_mac(name, value)
    if name in ("static_ip",):
        return normalize_inet(name, value)
    return value
