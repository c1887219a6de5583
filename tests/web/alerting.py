"""Alerts made for the dashboard's tests the way the evaluators make them: a rule created
through the API, then tasks.alerts.apply (the alerts table's row, the stream entry)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx2 as httpx
import redis
from sqlalchemy import select

from models import Alert
from models.enums import AlertKind
from tasks import alerts, sessions
from tasks.alert_eval import FIRE, RESOLVE, RuleSpec, Transition


def add_rule(api: httpx.Client, name: str, kind: str, params: dict[str, Any]) -> RuleSpec:
    """A rule through POST /api/alert-rules, left disabled: no evaluator fires it, the
    test does (with `fire`)."""
    answer = api.post("/api/alert-rules", json={"name": name, "kind": kind, "params": params})
    assert answer.status_code == 201, answer.text
    rule = answer.json()["rule"]
    return RuleSpec(rule["id"], name, AlertKind(kind), "all", None, params)


def _transition(
    edge: Any, rule: RuleSpec, subject: str, router_id: str, summary: str, value: float, threshold: float
) -> Transition:
    customer_id = subject.removeprefix("customer:") if subject.startswith("customer:") else None
    values = {"value": value, "threshold": threshold}
    return Transition(
        edge, rule, subject, customer_id, router_id, value, threshold, values, summary, time.time()
    )


def fire(
    client: redis.Redis,
    rule: RuleSpec,
    subject: str,
    router_id: str,
    summary: str,
    value: float = 97.3,
    threshold: float = 95.0,
) -> str:
    """Open the rule's alert on `subject` ("customer:<uuid>" or "router:<id>"): its id."""
    assert alerts.apply(_transition(FIRE, rule, subject, router_id, summary, value, threshold), client)
    with sessions.db() as s:
        alert_id = s.scalar(
            select(Alert.id).where(
                Alert.rule_id == rule.id, Alert.subject == subject, Alert.resolved_at.is_(None)
            )
        )
    assert isinstance(alert_id, uuid.UUID)
    return str(alert_id)


def resolve(client: redis.Redis, rule: RuleSpec, subject: str, router_id: str, summary: str) -> None:
    assert alerts.apply(_transition(RESOLVE, rule, subject, router_id, summary, 40.0, 95.0), client)


def row(alert_id: str) -> Alert:
    with sessions.db() as s:
        found = s.get(Alert, uuid.UUID(alert_id))
        assert found is not None
        s.expunge(found)
        return found
