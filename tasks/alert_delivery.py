"""Webhook delivery of alert events: fan-out, one task per (event, webhook), retries,
dead letters (docs/architecture.md, Alert delivery).

- `fan_out(event)` is the one entry point for whatever raises alerts: it writes one
  alert_deliveries row per enabled webhook (unique per event and webhook, so a second
  fan-out of the same event adds nothing) and enqueues a `deliver` task for each.
- `deliver(id)` runs on the `alerts` queue, never `monitors`: it claims the row (no
  two copies of its message send at once), POSTs once with a short timeout, and
  records the outcome. A failure schedules the next attempt with a Celery countdown
  (exponential backoff with jitter, capped) until ALERT_DELIVERY_MAX_AGE has passed;
  the row is then dead, listed by the API and retried only by hand. No task ever
  sleeps and each holds one endpoint only, so a slow endpoint delays no other.
- acks_late: a worker killed mid-delivery leaves the message in the broker, which
  hands it out again; `sweep` (beat, every ALERT_DELIVERY_SWEEP_INTERVAL) also
  re-enqueues any pending row that is overdue, whatever lost its message (a killed
  worker holding a countdown, a broker that was down at fan-out).

At least once, deduplicated by the receiver: an attempt whose answer was lost is
sent again with the same Idempotency-Key (the row's id).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from common.backoff import Backoff
from models import AlertDelivery, Webhook
from models.enums import AlertEventType, DeliveryState, WebhookFormat
from settings import Settings, get_settings
from tasks import metrics, sessions
from tasks.alert_events import AlertEvent, body_for, sends_to, signature, target_url
from tasks.app import app
from tasks.webhook_http import post

log = logging.getLogger(__name__)

DELIVER_TASK = "tasks.alert_delivery.deliver"
SWEEP_TASK = "tasks.alert_delivery.sweep"
QUEUE = "alerts"
USER_AGENT = "mtmon-alerts/1"
# The sweep leaves a row alone until it is this late: its own countdown message is
# normally about to run it.
SWEEP_GRACE = timedelta(seconds=5)
SWEEP_BATCH = 1000
ERROR_MAX = 500


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite: naive UTC


def claim_lease(settings: Settings) -> timedelta:
    """How long an attempt holds its row: past it, the attempt is taken for dead (a
    killed worker) and the row may be attempted again."""
    return timedelta(seconds=2 * settings.alert_webhook_timeout + 5)


def retry_delay(attempts: int, settings: Settings) -> float:
    """The wait after the `attempts`-th failed attempt: ALERT_DELIVERY_INITIAL_DELAY
    doubling per attempt, capped, drawn from [ceiling/2, ceiling] (common/backoff.py)."""
    backoff = Backoff(settings.alert_delivery_initial_delay, settings.alert_retry_cap)
    backoff.failures = max(0, attempts - 1)
    return backoff.next_delay()


# -- fan-out ------------------------------------------------------------------------------------


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(AlertDelivery).values(rows)
    session.execute(statement.on_conflict_do_nothing(index_elements=["event_id", "webhook_id"]))


def fan_out(event: AlertEvent, settings: Settings | None = None) -> list[str]:
    """Write a delivery for every enabled webhook that takes this event and enqueue them;
    the ids of the event's pending deliveries. Safe to call again for the same event."""
    with sessions.db() as session:
        ids = write_deliveries(session, event, settings)
    enqueue_all(ids)
    return ids


def write_deliveries(session: Session, event: AlertEvent, settings: Settings | None = None) -> list[str]:
    """`fan_out`'s rows, in the caller's transaction (tasks/alerts.py writes them with the
    alert's own change, so a crash cannot keep the one without the other); enqueue the
    ids it returns (`enqueue_all`) once that transaction has committed."""
    settings = settings or get_settings()
    now = _now()
    payload = event.to_json()
    hooks = session.execute(select(Webhook.id, Webhook.format).where(Webhook.enabled.is_(True))).all()
    rows = [
        {
            "id": uuid.uuid4(),
            "event_id": event.event_id,
            "webhook_id": hook_id,
            "event": event.event.value,
            "payload": payload,
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": now + timedelta(seconds=settings.alert_delivery_max_age),
        }
        for hook_id, fmt in hooks
        if sends_to(event.event, WebhookFormat(fmt))
    ]
    if rows:
        _insert_ignoring_duplicates(session, rows)
    return [
        str(i)
        for i in session.scalars(
            select(AlertDelivery.id).where(
                AlertDelivery.event_id == event.event_id, AlertDelivery.state == DeliveryState.PENDING
            )
        )
    ]


def enqueue_all(ids: list[str]) -> None:
    for delivery_id in ids:
        enqueue(delivery_id)


def enqueue(delivery_id: str, countdown: float = 0.0) -> bool:
    """Send a deliver message; False when the broker refused (the sweep will find the row)."""
    try:
        deliver.apply_async((delivery_id,), countdown=countdown or None, queue=QUEUE)
    except BrokerError as exc:
        log.warning("alert delivery %s: not enqueued (%s); the sweep will retry it", delivery_id, exc)
        return False
    return True


# -- one attempt --------------------------------------------------------------------------------


def _claim(delivery_id: uuid.UUID, settings: Settings) -> tuple[AlertDelivery, Webhook, datetime] | None:
    """Take the row for one attempt, or None: delivered, dead, not due, or being attempted."""
    now = _now()
    until = now + claim_lease(settings)
    with sessions.db() as session:
        claimed = session.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.id == delivery_id,
                AlertDelivery.state == DeliveryState.PENDING,
                # A countdown may fire a hair early by the worker's clock.
                AlertDelivery.next_attempt_at <= now + timedelta(seconds=1),
                or_(AlertDelivery.claimed_until.is_(None), AlertDelivery.claimed_until < now),
            )
            .values(claimed_until=until, attempts=AlertDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
            return None
        row = session.get(AlertDelivery, delivery_id)
        assert row is not None
        hook = session.get(Webhook, row.webhook_id)
        assert hook is not None  # the foreign key cascades: no row without its webhook
        session.expunge_all()
    return row, hook, until


def _record(row: AlertDelivery, claimed_until: datetime, changes: dict[str, Any]) -> bool:
    """Write the attempt's outcome if the claim is still ours (a lease that ran out may
    have let another attempt in, whose outcome is then the one that counts)."""
    with sessions.db() as session:
        done = session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == row.id, AlertDelivery.claimed_until == claimed_until)
            .values(claimed_until=None, **changes)
            .execution_options(synchronize_session=False)
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]  # a CursorResult


def attempt(delivery_id: str, settings: Settings | None = None) -> str:
    """One attempt of one delivery; its outcome: delivered, retry, dead or skipped."""
    settings = settings or get_settings()
    claimed = _claim(uuid.UUID(delivery_id), settings)
    if claimed is None:
        metrics.ALERT_DELIVERIES.labels("skipped").inc()
        return "skipped"
    row, hook, until = claimed
    status: int | None
    error: str | None
    if not hook.enabled:
        status, error = None, "the webhook is disabled"
    else:
        fmt = WebhookFormat(hook.format)
        body = body_for(fmt, str(row.id), row.payload, settings.alert_dashboard_url)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": str(row.id),
            "X-Mtmon-Event": str(row.event),
            "X-Mtmon-Timestamp": timestamp,
            "X-Mtmon-Signature": signature(hook.secret.get(), timestamp, body),
        }
        result = post(target_url(fmt, hook.url), body, headers, settings.alert_webhook_timeout)
        status, error = result.status, result.error
    now = _now()
    if error is None:
        _record(row, until, {"state": DeliveryState.DELIVERED, "delivered_at": now, "last_status": status})
        metrics.ALERT_DELIVERIES.labels("delivered").inc()
        started = row.payload.get("at")
        if isinstance(started, str):
            lag = (now - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()
            metrics.ALERT_DELIVERY_LAG.observe(max(0.0, lag))
        log.info("alert delivery %s to webhook %s: delivered (attempt %d)", row.id, hook.name, row.attempts)
        return "delivered"
    failure = {"last_error": error[:ERROR_MAX], "last_status": status}
    expires_at = _aware(row.expires_at)
    if now >= expires_at:
        _record(row, until, {**failure, "state": DeliveryState.DEAD, "dead_at": now})
        metrics.ALERT_DELIVERIES.labels("dead").inc()
        log.warning(
            "alert delivery %s to webhook %s: dead after %d attempts: %s",
            row.id,
            hook.name,
            row.attempts,
            error,
        )
        return "dead"
    # The last try is at the end of the window, so a long backoff cannot skip it.
    next_at = min(now + timedelta(seconds=retry_delay(row.attempts, settings)), expires_at)
    if _record(row, until, {**failure, "next_attempt_at": next_at}):
        enqueue(str(row.id), countdown=max(0.0, (next_at - now).total_seconds()))
    metrics.ALERT_DELIVERIES.labels("failed").inc()
    log.info(
        "alert delivery %s to webhook %s: attempt %d failed (%s); next at %s",
        row.id,
        hook.name,
        row.attempts,
        error,
        next_at.isoformat(timespec="seconds"),
    )
    return "retry"


# acks_late: this task is short (one POST with a timeout), so it never runs anywhere
# near the visibility timeout, and a worker killed while running it leaves its message
# to be handed out again (celeryconfig sets early ack for the monitors, not for this).
@app.task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)  # type: ignore[untyped-decorator]  # celery is untyped
def deliver(delivery_id: str) -> str:
    return attempt(delivery_id)


# -- sweep and retry by hand --------------------------------------------------------------------


def overdue(limit: int = SWEEP_BATCH) -> list[str]:
    """Pending deliveries that should have been attempted by now and are not being."""
    now = _now()
    with sessions.db() as session:
        return [
            str(i)
            for i in session.scalars(
                select(AlertDelivery.id)
                .where(
                    AlertDelivery.state == DeliveryState.PENDING,
                    AlertDelivery.next_attempt_at <= now - SWEEP_GRACE,
                    or_(AlertDelivery.claimed_until.is_(None), AlertDelivery.claimed_until < now),
                )
                .order_by(AlertDelivery.next_attempt_at)
                .limit(limit)
            )
        ]


@app.task(name=SWEEP_TASK, ignore_result=True, send_events=False)  # type: ignore[untyped-decorator]  # celery is untyped
def sweep() -> int:
    """Re-enqueue overdue deliveries; how many."""
    found = overdue()
    for delivery_id in found:
        enqueue(delivery_id)
    if found:
        log.info("alert deliveries: %d overdue re-enqueued", len(found))
    return len(found)


class DeliveryNotFound(LookupError):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"no webhook delivery {delivery_id}")
        self.delivery_id = delivery_id


class DeliveryNotDead(ValueError):
    def __init__(self, delivery_id: str, state: str) -> None:
        super().__init__(f"webhook delivery {delivery_id} is {state}: only a dead one can be retried")
        self.delivery_id = delivery_id
        self.state = state


def revive(session: Session, delivery_id: uuid.UUID, settings: Settings) -> AlertDelivery:
    """A dead delivery made pending again, due now, with a new ALERT_DELIVERY_MAX_AGE window;
    the caller commits, then enqueues it."""
    now = _now()
    revived = session.execute(
        update(AlertDelivery)
        .where(and_(AlertDelivery.id == delivery_id, AlertDelivery.state == DeliveryState.DEAD))
        .values(
            state=DeliveryState.PENDING,
            next_attempt_at=now,
            expires_at=now + timedelta(seconds=settings.alert_delivery_max_age),
            dead_at=None,
            claimed_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    row = session.get(AlertDelivery, delivery_id, populate_existing=True)
    if row is None:
        raise DeliveryNotFound(str(delivery_id))
    if revived.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
        raise DeliveryNotDead(str(delivery_id), str(row.state))
    return row


__all__ = ["AlertEvent", "AlertEventType", "deliver", "enqueue", "fan_out", "revive", "sweep"]
