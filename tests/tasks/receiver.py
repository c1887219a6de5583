"""What the alert tests send to the real HTTP receiver (harness/receiver.py) and check.

The receiver dedupes by Idempotency-Key as the README asks receivers to, so a test can
tell requests received (every attempt) from deliveries accepted (each key once).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime

from harness.receiver import Receiver
from models import AlertDelivery, Webhook
from models.enums import AlertEventType
from tasks import sessions
from tasks.alert_events import AlertEvent

__all__ = ["SECRET", "Receiver", "add_webhook", "delivery", "event", "verify_signature"]

SECRET = "test-webhook-secret-0123456789"


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, tolerance: float = 300) -> bool:
    """The README's verification snippet, as a receiver would run it."""
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # an old (replayed) request
    expected = (
        "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(expected, header)


def add_webhook(name: str, url: str, fmt: str = "generic") -> int:
    with sessions.db() as s:
        hook = Webhook(name=name, url=url, format=fmt, secret=SECRET)
        s.add(hook)
        s.flush()
        return hook.id


def delivery(delivery_id: str) -> AlertDelivery:
    with sessions.db() as s:
        row = s.get(AlertDelivery, uuid.UUID(delivery_id))
        assert row is not None
        s.expunge(row)
        return row


def event(kind: AlertEventType = AlertEventType.FIRING, alert_id: str | None = None) -> AlertEvent:
    now = datetime.now(UTC)
    return AlertEvent(
        event=kind,
        alert_id=alert_id or str(uuid.uuid4()),
        rule={"id": 1, "name": "Customer at 95% of plan", "kind": "utilization", "scope": "all"},
        subject={"type": "customer", "id": str(uuid.uuid4()), "name": "Alice", "router": "mikrotik-001"},
        values={"download_utilization": 99.5, "threshold_pct": 95},
        starts_at=now,
        at=now,
        ends_at=now if kind is AlertEventType.RESOLVED else None,
    )
