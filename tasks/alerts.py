"""Alert state: fire, resolve, acknowledge. PostgreSQL decides, the changer announces.

One open alert per rule and subject is the alerts table's partial unique index
(models/alert.py). Every change is one conditional statement:
- fire:        INSERT .. ON CONFLICT (rule_id, subject) WHERE resolved_at IS NULL DO NOTHING
- resolve:     UPDATE .. WHERE rule_id, subject AND resolved_at IS NULL
- acknowledge: UPDATE .. WHERE id AND acknowledged_at IS NULL
so of two evaluators making the same change (a watch and its fenced-out predecessor, a
monitor's redelivered message, two reconciler passes) exactly one changes the row, and
only that one announces it: the webhook deliveries are written in the same transaction
(tasks/alert_delivery.write_deliveries: a crash keeps both or neither; their tasks are
enqueued after the commit and the delivery sweep finds any that were not), then the
event goes to keys.ALERTS_STREAM for the dashboards. A crash between the commit and
the XADD loses that stream entry only (the dashboard's list reads GET /api/alerts).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Alert, AlertRule, Customer
from models.enums import AlertEventType, AlertKind, AlertState
from settings import Settings
from tasks import keys, metrics, sessions
from tasks.alert_delivery import enqueue_all, write_deliveries
from tasks.alert_eval import FIRE, Transition
from tasks.alert_events import AlertEvent
from tasks.message import alert_entry
from tasks.timestamps import iso, rfc3339

log = logging.getLogger(__name__)

STATES = ("open", "resolved", "all")


class AlertNotFound(LookupError):
    def __init__(self, alert_id: uuid.UUID) -> None:
        super().__init__(f"no alert {alert_id}")
        self.alert_id = alert_id


@dataclass(frozen=True)
class Change:
    """An alert this process changed: what to announce once its transaction committed."""

    event: AlertEventType
    alert: dict[str, Any]  # alert_json
    delivery_ids: list[str]


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite: naive UTC


# -- reading ------------------------------------------------------------------------------------


def alert_json(alert: Alert, rule: AlertRule, customer: Customer | None) -> dict[str, Any]:
    """An alert as the REST API and the events describe it (README, Alerts)."""
    return {
        "id": str(alert.id),
        "rule_id": rule.id,
        "rule_name": rule.name,
        "kind": str(rule.kind),
        "subject": alert.subject,
        "customer_id": None if alert.customer_id is None else str(alert.customer_id),
        "customer_name": customer.name if customer is not None else None,
        "username": customer.username if customer is not None else None,
        "router": alert.router_id,
        "state": str(alert.state),
        "started_at": iso(alert.started_at),
        "resolved_at": iso(alert.resolved_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "summary": alert.summary,
        "values": dict(alert.values or {}),
    }


def _rule_json(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": str(rule.kind),
        "scope": rule.scope,
        "params": dict(rule.params),
    }


def _describe(session: Session, alert: Alert) -> tuple[dict[str, Any], AlertRule, Customer | None]:
    rule = session.get(AlertRule, alert.rule_id)
    assert rule is not None, "alerts cascade with their rule"
    customer = session.get(Customer, alert.customer_id) if alert.customer_id is not None else None
    return alert_json(alert, rule, customer), rule, customer


def list_alerts(session: Session, state: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Alerts newest first: open (firing), resolved or all; and how many there are."""
    where = []
    if state == "open":
        where.append(Alert.resolved_at.is_(None))
    elif state == "resolved":
        where.append(Alert.resolved_at.is_not(None))
    total = int(session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0)
    rows = session.execute(
        select(Alert, AlertRule, Customer)
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .outerjoin(Customer, Customer.id == Alert.customer_id)
        .where(*where)
        .order_by(Alert.started_at.desc(), Alert.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [alert_json(a, r, c) for a, r, c in rows], total


def open_alerts(
    session: Session, kinds: Iterable[AlertKind] | None = None
) -> list[tuple[int, str, str | None]]:
    """(rule id, subject, router id) of every open alert, of these kinds."""
    statement = select(Alert.rule_id, Alert.subject, Alert.router_id).where(Alert.resolved_at.is_(None))
    if kinds is not None:
        statement = statement.join(AlertRule, AlertRule.id == Alert.rule_id).where(
            AlertRule.kind.in_([k.value for k in kinds])
        )
    return [(int(r), str(s), rt) for r, s, rt in session.execute(statement)]


def alert_counts(session: Session) -> dict[str, int]:
    """Open alerts by rule kind."""
    rows = session.execute(
        select(AlertRule.kind, func.count())
        .select_from(Alert)
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .where(Alert.resolved_at.is_(None))
        .group_by(AlertRule.kind)
    )
    return {str(kind): int(n) for kind, n in rows}


# -- changing -----------------------------------------------------------------------------------


def _event(change_event: AlertEventType, alert: dict[str, Any], rule: AlertRule, at: datetime) -> AlertEvent:
    if alert["customer_id"] is not None:
        subject: dict[str, Any] = {
            "type": "customer",
            "id": alert["customer_id"],
            "name": alert["customer_name"],
            "username": alert["username"],
            "router": alert["router"],
        }
    else:
        subject = {"type": "router", "id": alert["router"]}
    started = datetime.fromisoformat(alert["started_at"])
    ended = datetime.fromisoformat(alert["resolved_at"]) if alert["resolved_at"] else None
    return AlertEvent(
        event=change_event,
        alert_id=alert["id"],
        rule=_rule_json(rule),
        subject=subject,
        values=alert["values"],
        starts_at=started,
        at=at,
        ends_at=ended,
        acknowledged_by=alert["acknowledged_by"],
        extra={"summary": alert["summary"]},
    )


def _insert(session: Session, row: dict[str, Any]) -> uuid.UUID | None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(Alert)
        .values(row)
        .on_conflict_do_nothing(
            index_elements=["rule_id", "subject"], index_where=Alert.resolved_at.is_(None)
        )
        .returning(Alert.id)
    )
    return session.scalar(statement)


def fire(session: Session, t: Transition, settings: Settings | None = None) -> Change | None:
    """Open the alert unless one is open for the rule and subject: the Change if this call opened it."""
    started = _moment(t.at)
    row = {
        "id": uuid.uuid4(),
        "rule_id": t.rule.id,
        "subject": t.subject,
        "customer_id": None if t.customer_id is None else uuid.UUID(t.customer_id),
        "router_id": t.router_id,
        "state": AlertState.FIRING.value,
        "started_at": started,
        "values": dict(t.values),
        "summary": t.summary,
    }
    alert_id = _insert(session, row)
    if alert_id is None:
        return None
    alert = session.get(Alert, alert_id)
    assert alert is not None
    return _announce(session, AlertEventType.FIRING, alert, started, settings)


def resolve(session: Session, t: Transition, settings: Settings | None = None) -> Change | None:
    """Close the open alert of the rule and subject: the Change if this call closed it."""
    ended = _moment(t.at)
    alert_id = session.scalar(
        update(Alert)
        .where(Alert.rule_id == t.rule.id, Alert.subject == t.subject, Alert.resolved_at.is_(None))
        .values(state=AlertState.RESOLVED.value, resolved_at=ended)
        .returning(Alert.id)
        .execution_options(synchronize_session=False)
    )
    if alert_id is None:
        return None
    alert = session.get(Alert, alert_id)
    assert alert is not None
    session.refresh(alert)
    # What it was when it fired, and what it is now.
    alert.values = {**dict(alert.values or {}), "resolved_value": t.value}
    return _announce(session, AlertEventType.RESOLVED, alert, ended, settings)


def acknowledge(
    session: Session, alert_id: uuid.UUID, by: str, settings: Settings | None = None
) -> tuple[dict[str, Any], Change | None]:
    """Mark the alert acknowledged (by the API's caller); a second time changes nothing."""
    now = datetime.now(UTC)
    changed = session.scalar(
        update(Alert)
        .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=by[:200])
        .returning(Alert.id)
        .execution_options(synchronize_session=False)
    )
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    if changed is None:
        return _describe(session, alert)[0], None
    session.refresh(alert)
    change = _announce(
        session, AlertEventType.ACKNOWLEDGED, alert, _aware(now) or datetime.now(UTC), settings
    )
    return change.alert, change


def _announce(
    session: Session, event: AlertEventType, alert: Alert, at: datetime, settings: Settings | None
) -> Change:
    described, rule, _ = _describe(session, alert)
    ids = write_deliveries(session, _event(event, described, rule, at), settings)
    return Change(event, described, ids)


def publish(client: redis.Redis, change: Change, settings: Settings | None = None) -> None:
    """After the commit: the deliveries' tasks, then the stream entry (best effort: the
    table is the truth, GET /api/alerts lists it)."""
    enqueue_all(change.delivery_ids)
    a = change.alert
    values = a["values"]
    entry = alert_entry(
        change.event.value,
        alert_id=a["id"],
        rule_id=a["rule_id"],
        rule_name=a["rule_name"],
        rule_kind=a["kind"],
        subject=a["subject"],
        customer_id=a["customer_id"],
        customer_name=a["customer_name"],
        username=a["username"],
        router=a["router"] or "",
        summary=a["summary"],
        value=_number(values.get("value")),
        threshold=_number(values.get("threshold")),
        started_at=_rfc(a["started_at"]) or "",
        resolved_at=_rfc(a["resolved_at"]),
        acknowledged_by=a["acknowledged_by"],
    )
    try:
        client.xadd(keys.ALERTS_STREAM, entry, maxlen=keys.ALERTS_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]  # redis-py's field types are invariant
    except redis.RedisError as exc:
        log.warning("alert %s: %s not added to the alerts stream: %s", a["id"], change.event.value, exc)
    metrics.ALERT_TRANSITIONS.labels(change.event.value).inc()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rfc(text: str | None) -> str | None:
    return None if text is None else rfc3339(datetime.fromisoformat(text))


def apply(t: Transition, client: redis.Redis, settings: Settings | None = None) -> bool:
    """Write one transition and announce it if this call changed the alert."""
    try:
        with sessions.db() as session:
            change = fire(session, t, settings) if t.edge == FIRE else resolve(session, t, settings)
    except IntegrityError:
        # The rule or the customer was deleted meanwhile: nothing to alert about.
        log.info("alert of rule %s on %s not written: its rule or customer is gone", t.rule.id, t.subject)
        return False
    if change is None:
        return False
    publish(client, change, settings)
    log.info("alert %s %s: %s", change.alert["id"], change.event.value, change.alert["summary"])
    return True
