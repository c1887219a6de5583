"""What the alert evaluation tests write and read: rules, alert rows, alert events."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select

from harness.polling import wait_for
from models import Alert, AlertDelivery, AlertRule, Customer, Package, Webhook
from tasks import keys, sessions
from tests.tasks.streams import decoded


def add_rule(name: str, kind: str, params: dict[str, Any], scope: str = "all") -> int:
    """An enabled rule (the evaluators see it within ALERT_RULES_REFRESH)."""
    with sessions.db() as s:
        rule = AlertRule(name=name, kind=kind, scope=scope, params=params, enabled=True)
        rule.check()
        s.add(rule)
        s.flush()
        return rule.id


def disable_rules() -> None:
    with sessions.db() as s:
        for rule in s.scalars(select(AlertRule)):
            rule.enabled = False


def clear(redis_client: Any) -> None:
    """No rule enabled, no alert, webhook or delivery; an empty alerts stream."""
    with sessions.db() as s:
        s.execute(delete(Alert))
        s.execute(delete(AlertDelivery))
        s.execute(delete(Webhook))
        s.execute(delete(AlertRule).where(AlertRule.name.like("test %")))
    disable_rules()
    redis_client.delete(keys.ALERTS_STREAM)


def events(redis_client: Any, rule_id: int | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    entries = decoded(redis_client.xrange(keys.ALERTS_STREAM))
    return [
        e
        for e in entries
        if (rule_id is None or e["rule_id"] == rule_id) and (kind is None or e["type"] == kind)
    ]


def wait_event(redis_client: Any, rule_id: int, kind: str, timeout: float, what: str) -> dict[str, Any]:
    found = wait_for(lambda: events(redis_client, rule_id, kind), timeout, what=what, step=0.1)
    return found[0]


def rows(rule_id: int) -> list[Alert]:
    with sessions.db() as s:
        found = list(s.scalars(select(Alert).where(Alert.rule_id == rule_id).order_by(Alert.started_at)))
        for row in found:
            s.expunge(row)
        return found


def download_plan(customer_id: str) -> int:
    with sessions.db() as s:
        plan = s.scalar(
            select(Package.download_bps)
            .join(Customer, Customer.package_id == Package.id)
            .where(Customer.id == uuid.UUID(customer_id))
        )
        assert plan, "the customer has a package speed"
        return int(plan)
