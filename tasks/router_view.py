"""One cycle of a router watch, as data: who is online, who uses how much, the top.

Pure functions over what the cycle read (the session tables, the two prints' rows,
their counters' rates) and the router's `Directory`; tasks/watch.py does the I/O.
Per cycle everything here is O(customers) with dict look-ups.

The view (`View.state`) is what the REST routes read from Redis (keys.router_view):
one row per customer that has a rate or a session this cycle, plus the unknown
sessions (a login no customer of this router has), listed, never dropped.
Totals cover every session and queue the watch attributes: known customers and
unknown sessions alike (the router's load, not only its customers').
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.message import CustomerMeta, MessageError, parse_pair, top_row
from tasks.rates import CounterRates, parse_counter, parse_counter_pair
from tasks.router_customers import Directory
from tasks.session_table import Session

# What the cycle's two prints ask for (=.proplist=): only the counters and what names them.
INTERFACE_QUERY = ("?type=pppoe-in",)
INTERFACE_PROPLIST = ("name", "rx-byte", "tx-byte")
QUEUE_PROPLIST = ("name", "target", "rate", "bytes")

_PPPOE_PREFIX = "<pppoe-"
_HOTSPOT_PREFIX = "<hotspot-"

Rate = tuple[int, int]  # (download bps, upload bps)


@dataclass
class Rates:
    """This cycle's rates: known customers by id, unknown sessions by (kind, login)."""

    customers: dict[str, Rate] = field(default_factory=dict)
    unknown: dict[tuple[str, str], Rate] = field(default_factory=dict)
    skipped: int = 0  # rows that could not be read (logged by the caller)


def interface_rates(
    rows: Iterable[Mapping[str, str]], directory: Directory, counters: CounterRates, when: float, out: Rates
) -> None:
    """`/interface/print ?type=pppoe-in`: byte-counter deltas. On a `<pppoe-…>`
    interface tx is what the router sends the customer: the download."""
    seen = []
    for row in rows:
        name = row.get("name")
        if not name:
            continue
        try:
            down = parse_counter(row.get("tx-byte"), "tx-byte")
            up = parse_counter(row.get("rx-byte"), "rx-byte")
        except MessageError:
            out.skipped += 1
            continue
        seen.append(name)
        rate = counters.update(name, down, up, when)
        if rate is None:
            continue
        meta = directory.interfaces.get(name)
        if meta is not None:
            out.customers[meta.customer_id] = rate
        elif name.startswith(_PPPOE_PREFIX) and name.endswith(">"):
            out.unknown[("pppoe", name[len(_PPPOE_PREFIX) : -1])] = rate
    counters.keep_only(seen)


def queue_rates(
    rows: Iterable[Mapping[str, str]], directory: Directory, counters: CounterRates, when: float, out: Rates
) -> None:
    """`/queue/simple/print`: hotspot `<hotspot-…>` queues and static customers' queues
    (by target). Rates are `bytes` deltas (upload/download from the target's view), like
    the interfaces': the average over the whole cycle, in a unit the manual leaves no
    doubt about (`rate`'s bits-or-bytes is disputed: docs/routeros.md, Directions).
    `rate` stands in for a queue's first cycle and after a reset. Other queues (the
    `<pppoe-…>` queues of rate-limited PPP users, parents) are not counted: their
    traffic is already the interface's."""
    seen = []
    for row in rows:
        name = row.get("name") or ""
        meta = directory.queues.get(name)
        if meta is None:
            target = row.get("target")
            meta = directory.targets.get(target) if target else None
        unknown_login = None
        if meta is None:
            if not (name.startswith(_HOTSPOT_PREFIX) and name.endswith(">")):
                continue
            unknown_login = name[len(_HOTSPOT_PREFIX) : -1]
        key = "queue:" + name
        try:
            down, up = parse_counter_pair(row.get("bytes"), "bytes")
        except MessageError:
            out.skipped += 1
            continue
        seen.append(key)
        rate = counters.update(key, down, up, when)
        if rate is None:
            try:
                up_bps, down_bps = parse_pair(row.get("rate") or "", "rate")
            except MessageError:
                continue
            rate = (down_bps, up_bps)
        if meta is not None:
            out.customers[meta.customer_id] = rate
        elif unknown_login is not None:
            out.unknown[("hotspot", unknown_login)] = rate
    counters.keep_only(seen)


@dataclass
class View:
    """One cycle's picture of a router."""

    rows: list[dict[str, Any]]  # a customer with a rate or a session (see `customer_row`)
    unknown: list[dict[str, Any]]  # sessions whose login matches no customer
    online: int  # sessions (known and unknown)
    customers: int  # customers with a rate this cycle
    download_bps: int
    upload_bps: int

    def top(self, n: int) -> list[dict[str, Any]]:
        """The `n` rows with the highest download (then upload), highest first."""
        rated = (r for r in self.rows if r["download_bps"] is not None)
        return heapq.nlargest(n, rated, key=lambda r: (r["download_bps"], r["upload_bps"]))

    def state(self, *, interval: float, cycle_ms: int) -> dict[str, Any]:
        """What keys.router_view holds (tasks.watch adds when, in Redis time)."""
        return {
            "status": "ok",
            "reason": None,
            "interval_ms": int(round(interval * 1000)),
            "cycle_ms": cycle_ms,
            "online": self.online,
            "customers": self.customers,
            "download_bps": self.download_bps,
            "upload_bps": self.upload_bps,
            "rows": self.rows,
            "unknown": self.unknown,
        }


def top_json(row: Mapping[str, Any], monitored: bool) -> dict[str, Any]:
    """A view row as a top frame lists it (tasks.message.top_row)."""
    meta = CustomerMeta(
        customer_id=row["customer_id"],
        customer_name=row["customer_name"],
        username=row["username"],
        service_type=row["service_type"],
        interface="",
        router="",
        package_download_bps=row["package_download_bps"],
        package_upload_bps=row["package_upload_bps"],
    )
    return top_row(meta, row["download_bps"], row["upload_bps"], monitored)


def session_json(session: Session, now: float) -> dict[str, Any]:
    return {
        "kind": session.kind,
        "name": session.name,
        "address": session.address,
        "caller_id": session.caller_id,
        "uptime_s": session.uptime_at(now),
    }


def customer_row(
    meta: CustomerMeta, rate: Rate | None, session: Session | None, now: float
) -> dict[str, Any]:
    return {
        "customer_id": meta.customer_id,
        "customer_name": meta.customer_name,
        "username": meta.username,
        "service_type": meta.service_type,
        "package_download_bps": meta.package_download_bps,
        "package_upload_bps": meta.package_upload_bps,
        "download_bps": None if rate is None else rate[0],
        "upload_bps": None if rate is None else rate[1],
        "session": None if session is None else session_json(session, now),
    }


def build_view(directory: Directory, sessions: Iterable[Session], rates: Rates, now: float) -> View:
    by_customer: dict[str, tuple[CustomerMeta, Session]] = {}
    unknown: list[dict[str, Any]] = []
    online = 0
    for session in sessions:
        online += 1
        meta = directory.login(session.kind, session.name)
        if meta is None:
            rate = rates.unknown.get((session.kind, session.name))
            unknown.append(
                {
                    **session_json(session, now),
                    "download_bps": None if rate is None else rate[0],
                    "upload_bps": None if rate is None else rate[1],
                }
            )
        else:
            by_customer[meta.customer_id] = (meta, session)
    rows: list[dict[str, Any]] = []
    metas = directory.by_id
    down_total = up_total = 0
    for customer_id, rate in rates.customers.items():
        down_total += rate[0]
        up_total += rate[1]
        known = by_customer.pop(customer_id, None)
        meta = known[0] if known is not None else metas.get(customer_id)
        if meta is not None:
            rows.append(customer_row(meta, rate, known[1] if known is not None else None, now))
    for meta, session in by_customer.values():
        rows.append(customer_row(meta, None, session, now))
    for rate in rates.unknown.values():
        down_total += rate[0]
        up_total += rate[1]
    unknown.sort(key=lambda s: (s["kind"], s["name"]))
    return View(
        rows=rows,
        unknown=unknown,
        online=online,
        customers=len(rates.customers),
        download_bps=down_total,
        upload_bps=up_total,
    )
