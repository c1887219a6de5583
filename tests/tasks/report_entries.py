"""Entries for a session report, as a monitor would publish them, built by
tasks/message.py: traffic samples, `started` and latency entries, flat str -> str like
every stream entry."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from tasks.message import CustomerMeta, Rates, latency_entry, status_entry, traffic_entry

WHEN = datetime(2026, 12, 14, 10, 0, tzinfo=UTC)
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
    """One latency entry (no `seq`), built by tasks.message."""
    return latency_entry(
        meta,
        address="10.0.0.2",
        ping_seq=ping_seq,
        rtt_ms=rtt_ms,
        status=status,
        loss_pct=0.0,
        session_id=session_id,
        fence=fence,
        timestamp=WHEN,
    )


def nearest_rank(values: Sequence[float], p: float) -> float:
    """The p-th percentile by nearest rank, computed apart from tasks/report.py."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]
