"""A real HTTP webhook receiver in a thread, and what the alert tests send and check.

The receiver dedupes by Idempotency-Key as the README asks receivers to, so a test can
tell requests received (every attempt) from deliveries accepted (each key once). It
can fail its first requests (HTTP 500) or hang on them until released.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from models import AlertDelivery, Webhook
from models.enums import AlertEventType
from tasks import sessions
from tasks.alert_events import AlertEvent

SECRET = "test-webhook-secret-0123456789"


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, tolerance: float = 300) -> bool:
    """The README's verification snippet, as a receiver would run it."""
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # an old (replayed) request
    expected = (
        "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(expected, header)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        return self.headers["Idempotency-Key"]

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.accepted: list[str] = []  # Idempotency-Keys, each once
        self.fail_next = 0  # answer this many requests with HTTP 500
        self.fail_all = False
        self.hang_next = 0  # hold this many requests until `release` is set (then 503)
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                got = Received(self.path, dict(self.headers.items()), body)
                with receiver._lock:
                    receiver.requests.append(got)
                    hang = receiver.hang_next > 0
                    receiver.hang_next -= 1 if hang else 0
                    fail = not hang and (receiver.fail_all or receiver.fail_next > 0)
                    receiver.fail_next -= 1 if fail and receiver.fail_next > 0 else 0
                    if not hang and not fail and got.key not in receiver.accepted:
                        receiver.accepted.append(got.key)
                if hang:
                    receiver.release.wait(60)
                self._answer(503 if hang else 500 if fail else 200)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone (its timeout, or a killed worker)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def received(self, key: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if key is None or r.key == key]


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
