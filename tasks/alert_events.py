"""Alert events and the webhook bodies made from them: the one definition of both.

An `AlertEvent` is what the alert evaluator hands to `tasks.alert_delivery.fan_out`:
an alert (one per rule and subject while open) firing, resolving or being
acknowledged. It is stored as JSON in each delivery row (`to_json`), and every
attempt builds its body from that, so retries send the same bytes.

Bodies (README "Webhooks"):
- generic: one JSON object, `id` being the delivery's Idempotency-Key;
- alertmanager: Alertmanager's v2 `POST /api/v2/alerts`, a list of one alert.
Every body is signed: X-Mtmon-Signature = "sha256=" + hex HMAC-SHA256 of
"<X-Mtmon-Timestamp>.<body>" with the webhook's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from models.enums import AlertEventType, WebhookFormat
from tasks.timestamps import rfc3339

ALERTMANAGER_PATH = "/api/v2/alerts"
# Alertmanager resolves an alert by itself at its endsAt. A firing alert is sent once,
# so its endsAt is put this far ahead; the resolved event sets the real one.
ALERTMANAGER_HOLD = timedelta(hours=24)

_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class AlertEvent:
    """One event of one alert.

    alert_id: the evaluator's id of the open alert (rule and subject, one open at a
    time); with the event type it makes `event_id`, which is what makes fanning the
    same event out twice harmless. rule: id, name, kind, scope (and params).
    subject: whom it is about, e.g. {"type": "customer", "id": ..., "name": ...,
    "router": ...} or {"type": "router", "id": ...}. values: the numbers behind it.
    """

    event: AlertEventType
    alert_id: str
    rule: Mapping[str, Any]
    subject: Mapping[str, Any]
    values: Mapping[str, Any]
    starts_at: datetime
    at: datetime  # when this event happened (= starts_at for a firing event)
    ends_at: datetime | None = None  # resolved events
    acknowledged_by: str | None = None  # acknowledged events
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return f"{self.alert_id}:{self.event.value}"

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event.value,
            "event_id": self.event_id,
            "alert_id": self.alert_id,
            "rule": dict(self.rule),
            "subject": dict(self.subject),
            "values": dict(self.values),
            "starts_at": rfc3339(self.starts_at),
            "ends_at": None if self.ends_at is None else rfc3339(self.ends_at),
            "at": rfc3339(self.at),
            "acknowledged_by": self.acknowledged_by,
            **dict(self.extra),
        }


def sends_to(event: AlertEventType, fmt: WebhookFormat) -> bool:
    """Whether a webhook of `fmt` gets `event`: Alertmanager knows no acknowledgement
    (its silences are that), so it gets firing and resolved only."""
    return not (fmt is WebhookFormat.ALERTMANAGER and event is AlertEventType.ACKNOWLEDGED)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def generic_body(delivery_id: str, payload: Mapping[str, Any], dashboard_url: str) -> bytes:
    body = {"id": delivery_id, **payload}
    body["url"] = _link(payload, dashboard_url)
    return _dumps(body)


def _link(payload: Mapping[str, Any], dashboard_url: str) -> str | None:
    """Where the dashboard shows the subject (ALERT_DASHBOARD_URL; None without it)."""
    if not dashboard_url:
        return None
    subject = payload.get("subject") or {}
    if subject.get("type") == "customer" and subject.get("id"):
        return f"{dashboard_url}/#customer={subject['id']}"
    if subject.get("type") == "router" and subject.get("id"):
        return f"{dashboard_url}/#router={subject['id']}"
    return f"{dashboard_url}/"


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def alertmanager_body(payload: Mapping[str, Any], dashboard_url: str) -> bytes:
    """Alertmanager v2's postableAlerts: labels identify the alert (Alertmanager groups
    and dedupes by them), annotations describe it."""
    rule = payload.get("rule") or {}
    subject = payload.get("subject") or {}
    labels = {
        "alertname": _label(rule.get("name", "mtmon alert")),
        "source": "mtmon",
        "rule_id": _label(rule.get("id", "")),
        "kind": _label(rule.get("kind", "")),
    }
    for key, value in subject.items():
        if value is not None:
            labels[_LABEL_NAME.sub("_", f"subject_{key}" if key in ("type", "id") else str(key))] = _label(
                value
            )
    at = _parse(payload["at"])
    ended = payload.get("event") == AlertEventType.RESOLVED.value and payload.get("ends_at")
    ends_at = payload["ends_at"] if ended else rfc3339(at + ALERTMANAGER_HOLD)
    annotations = {
        "summary": f"{labels['alertname']}: {_label(subject.get('name') or subject.get('id') or 'all')}",
        "values": _label(payload.get("values") or {}),
        "alert_id": _label(payload.get("alert_id", "")),
    }
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": payload["starts_at"],
        "endsAt": ends_at,
    }
    link = _link(payload, dashboard_url)
    if link is not None:
        alert["generatorURL"] = link
    return _dumps([alert])


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def body_for(fmt: WebhookFormat, delivery_id: str, payload: Mapping[str, Any], dashboard_url: str) -> bytes:
    if fmt is WebhookFormat.ALERTMANAGER:
        return alertmanager_body(payload, dashboard_url)
    return generic_body(delivery_id, payload, dashboard_url)


def target_url(fmt: WebhookFormat, url: str) -> str:
    """Where to POST: an Alertmanager webhook may be given as Alertmanager's base URL."""
    if fmt is WebhookFormat.ALERTMANAGER and not url.rstrip("/").endswith(ALERTMANAGER_PATH):
        return url.rstrip("/") + ALERTMANAGER_PATH
    return url


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """X-Mtmon-Signature's value: HMAC-SHA256 over "<timestamp>.<body>"."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()
