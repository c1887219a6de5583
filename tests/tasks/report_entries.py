"""Entries for a session report, as a monitor would publish them: traffic samples from
tasks/message.py's builders, and latency entries written by hand per CONTRACT19 (the
builder of those is another module's), flat str -> str like every stream entry."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tasks.message import CustomerMeta, Rates, status_entry, traffic_entry

SESSION = "6f1c8a36-0000-4000-8000-000000000001"
PLANNED = CustomerMeta(
    customer_id="c2a7e5d4-0000-4000-8000-000000000002",
    customer_name="Alice",
    username="alice",
    service_type="pppoe",
    interface="<pppoe-alice>",
    router="core-1",
    package="home-10M",
    package_download_bps=10_000_000,
    package_upload_bps=5_000_000,
)
UNPLANNED = CustomerMeta(
    customer_id="c2a7e5d4-0000-4000-8000-000000000003",
    customer_name="Bob",
    username="bob",
    service_type="hotspot",
    interface="<hotspot-bob>",
    router="core-1",
)


def sample(
    down: int, up: int, seq: int, meta: CustomerMeta = PLANNED, session_id: str = SESSION, fence: int = 1
) -> dict[str, str]:
    """One traffic entry (flat), built by tasks.message."""
    rates = Rates(str(up), str(down), down, up, None, None)
    return traffic_entry(meta, rates, session_id=session_id, seq=seq, fence=fence)


def started(
    seq: int = 0, attempt: int = 1, meta: CustomerMeta = PLANNED, session_id: str = SESSION, fence: int = 1
) -> dict[str, str]:
    return status_entry(
        "started", meta, session_id=session_id, seq=seq, fence=fence, reason=f"attempt {attempt}"
    )


def probe(
    rtt_ms: float | None,
    status: str | None = None,
    ping_seq: int = 0,
    meta: CustomerMeta = PLANNED,
    session_id: str = SESSION,
    fence: int = 1,
) -> dict[str, str]:
    """One latency entry as CONTRACT19 fixes its fields (no `seq`)."""
    fields: dict[str, Any] = {
        "type": "latency",
        "customer_id": meta.customer_id,
        "customer_name": meta.customer_name,
        "username": meta.username,
        "service_type": meta.service_type,
        "interface": meta.interface,
        "router": meta.router,
        "session_id": session_id,
        "fence": fence,
        "timestamp": "2026-12-14T10:00:00.000Z",
        "address": "10.0.0.2",
        "ping_seq": ping_seq,
        "rtt_ms": "" if rtt_ms is None else f"{rtt_ms:.3f}",
        "status": status or "",
        "loss_pct": "0.00",
    }
    return {k: str(v) for k, v in fields.items()}


def nearest_rank(values: Sequence[float], p: float) -> float:
    """The p-th percentile by nearest rank, computed apart from tasks/report.py."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]
