"""Turning a router's tables into packages and customer records.

Pure functions over the rows RouterClient.call returns (raw strings), so the
mapping can be read and tested apart from the network.
Direction: a PPP/HotSpot profile `rate-limit` is "rx/tx" from the router's view,
rx = what the customer uploads, tx = what it downloads; a simple queue's
`max-limit` is "upload/download" from the target's view. Both read UP/DOWN.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from models.enums import CustomerStatus
from models.sync import CustomerRecord, PackageSpec

_RATE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[kKmMgG]?)$")
_UNIT = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}

PROFILE_PROPS = ("name", "rate-limit")
SECRET_PROPS = ("name", "password", "profile", "service", "disabled", "comment")
HOTSPOT_USER_PROPS = (
    "name",
    "password",
    "profile",
    "mac-address",
    "disabled",
    "comment",
    "default",
    "dynamic",
)
QUEUE_PROPS = ("name", "target", "dynamic", "max-limit", "disabled", "comment")


def parse_rate(text: str) -> int | None:
    """'10M' -> 10_000_000; None when unparseable."""
    match = _RATE.match(text.strip())
    if not match:
        return None
    return int(float(match.group("num")) * _UNIT[match.group("unit").lower()])


def parse_up_down(text: str | None) -> tuple[int, int] | None:
    """The first 'UP/DOWN' pair of a rate-limit or max-limit, as (upload, download) bps.

    None when absent, malformed or unlimited (0): no package can be made of it.
    """
    if not text or not text.strip():
        return None
    first = text.split()[0]
    parts = first.split("/")
    if len(parts) == 1:
        parts = parts * 2  # one value limits both directions
    if len(parts) != 2:
        return None
    up, down = parse_rate(parts[0]), parse_rate(parts[1])
    if not up or not down:
        return None
    return up, down


def si(bps: int) -> str:
    for div, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if bps >= div and bps % div == 0:
            return f"{bps // div}{unit}"
    return str(bps)


@dataclass
class RouterSnapshot:
    """What the import read from one router."""

    ppp_profiles: list[dict[str, str]] = field(default_factory=list)
    hotspot_profiles: list[dict[str, str]] = field(default_factory=list)
    ppp_secrets: list[dict[str, str]] = field(default_factory=list)
    hotspot_users: list[dict[str, str]] = field(default_factory=list)
    simple_queues: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ImportPlan:
    packages: list[PackageSpec]
    records: list[CustomerRecord]
    skipped: int
    warnings: list[str]


def plan_import(snapshot: RouterSnapshot, known: dict[tuple[int, int], str]) -> ImportPlan:
    """Packages and customer records from a snapshot.

    `known` maps (download_bps, upload_bps) to an existing package name, so a
    static queue whose max-limit matches a package is given that package.
    """
    warnings: list[str] = []
    packages = _profile_packages(snapshot, warnings)
    by_speed = dict(known)
    for spec in packages.specs.values():
        by_speed.setdefault((spec.download_bps, spec.upload_bps), spec.name)
    ppp, skipped_secrets = _secret_records(snapshot.ppp_secrets, packages.ppp)
    hotspot = _hotspot_records(snapshot.hotspot_users, packages.hotspot)
    queues, skipped_queues = _queue_records(snapshot.simple_queues, packages.specs, by_speed, warnings)
    return ImportPlan(
        list(packages.specs.values()), ppp + hotspot + queues, skipped_secrets + skipped_queues, warnings
    )


@dataclass
class _ProfilePackages:
    """The packages made of PPP and HotSpot profiles, and the package of each profile."""

    specs: dict[str, PackageSpec] = field(default_factory=dict)
    ppp: dict[str, str] = field(default_factory=dict)
    hotspot: dict[str, str] = field(default_factory=dict)


def _profile_packages(snapshot: RouterSnapshot, warnings: list[str]) -> _ProfilePackages:
    """A package per profile with a rate-limit; a HotSpot profile named like a PPP profile
    is that package (a warning says so when their speeds differ)."""
    packages = _ProfilePackages()
    for rows, mapping, menu in (
        (snapshot.ppp_profiles, packages.ppp, "/ppp/profile"),
        (snapshot.hotspot_profiles, packages.hotspot, "/ip/hotspot/user/profile"),
    ):
        for row in rows:
            name = row.get("name", "")
            speeds = parse_up_down(row.get("rate-limit"))
            if not name or speeds is None:
                continue
            spec = PackageSpec(name, download_bps=speeds[1], upload_bps=speeds[0])
            if name in packages.specs and packages.specs[name] != spec:
                warnings.append(
                    f"{menu} {name!r}: rate-limit differs from the PPP profile of that name; "
                    "the PPP profile's speeds are used"
                )
                mapping[name] = name
                continue
            packages.specs[name] = spec
            mapping[name] = name
    return packages


def _secret_records(
    secrets: list[dict[str, str]], packages: dict[str, str]
) -> tuple[list[CustomerRecord], int]:
    """PPPoE customers from /ppp/secret, and how many secrets are for other services."""
    records: list[CustomerRecord] = []
    skipped = 0
    for row in secrets:
        name = row.get("name", "")
        service = row.get("service", "any")
        if not name or service not in ("pppoe", "any"):
            skipped += 1
            continue
        profile = row.get("profile") or None
        records.append(
            _record(
                "/ppp/secret",
                row,
                "pppoe",
                packages.get(profile or ""),
                pppoe_username=name,
                pppoe_password=row.get("password"),
                pppoe_profile=profile,
            )
        )
    return records, skipped


def _hotspot_records(users: list[dict[str, str]], packages: dict[str, str]) -> list[CustomerRecord]:
    """HotSpot customers from /ip/hotspot/user."""
    records: list[CustomerRecord] = []
    for row in users:
        name = row.get("name", "")
        if not name or row.get("default") == "true" or row.get("dynamic") == "true":
            continue  # the built-in trial user and dynamic entries are nobody's account
        records.append(
            _record(
                "/ip/hotspot/user",
                row,
                "hotspot",
                packages.get(row.get("profile") or ""),
                hotspot_username=name,
                hotspot_password=row.get("password"),
                hotspot_mac_address=row.get("mac-address") or None,
            )
        )
    return records


def _queue_records(
    queues: list[dict[str, str]],
    specs: dict[str, PackageSpec],
    by_speed: dict[tuple[int, int], str],
    warnings: list[str],
) -> tuple[list[CustomerRecord], int]:
    """Static-IP customers from /queue/simple, and how many queues target no single host.
    A queue's max-limit finds its package by speed; speeds no package has make a new one
    (added to `specs` and `by_speed`)."""
    records: list[CustomerRecord] = []
    skipped = 0
    for row in queues:
        name = row.get("name", "")
        if not name or row.get("dynamic") == "true":
            continue  # HotSpot/PPP session queues: those customers come from the menus above
        address = _single_host(row.get("target", ""))
        if address is None:
            skipped += 1
            warnings.append(
                f"/queue/simple {name!r}: target {row.get('target', '')!r} is not one host "
                "address (/32): not a static-IP customer, skipped"
            )
            continue
        package = None
        speeds = parse_up_down(row.get("max-limit"))
        if speeds is not None:
            key = (speeds[1], speeds[0])
            package = by_speed.get(key)
            if package is None:
                package = f"queue-{si(speeds[0])}/{si(speeds[1])}"
                specs[package] = PackageSpec(package, download_bps=speeds[1], upload_bps=speeds[0])
                by_speed[key] = package
        records.append(_record("/queue/simple", row, "static_ip", package, static_ip=address))
    return records, skipped


class _ServiceFields(TypedDict, total=False):
    pppoe_username: str
    pppoe_password: str | None
    pppoe_profile: str | None
    hotspot_username: str
    hotspot_password: str | None
    hotspot_mac_address: str | None
    static_ip: str


def _record(
    menu: str, row: dict[str, str], service_type: str, package: str | None, **fields: Unpack[_ServiceFields]
) -> CustomerRecord:
    """A router entry as a customer: what every menu has in common. Its name is the
    username, its comment the display name, and a disabled entry makes an inactive
    customer (status counts for new rows only: it is not a customer to monitor yet)."""
    name = row["name"]
    status = CustomerStatus.INACTIVE if row.get("disabled") == "true" else CustomerStatus.ACTIVE
    return CustomerRecord(
        username=name,
        service_type=service_type,
        name=row.get("comment") or name,
        package=package,
        status=status.value,
        source=f"{menu} {name!r}",
        **fields,
    )


def _single_host(target: str) -> str | None:
    parts = [p for p in target.split(",") if p.strip()]
    if len(parts) != 1:
        return None
    try:
        iface = ipaddress.ip_interface(parts[0].strip())
    except ValueError:
        return None
    if iface.network.prefixlen != iface.max_prefixlen:
        return None
    return iface.ip.compressed
