"""Alert rules, webhooks and webhook deliveries for the REST layer (synchronous: run them
in a thread). The data layer checks every field (models/alert_rule.py,
models/webhook.py); webhook secrets are write-only: answers say `has_secret`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import AlertDelivery, AlertRule, Customer, Package, Router, Webhook
from models.alert_rule import parse_scope
from models.enums import DeliveryState
from models.errors import DuplicateNameError, InvalidFieldError
from tasks.timestamps import iso


class AlertRuleNotFound(LookupError):
    def __init__(self, rule_id: int) -> None:
        super().__init__(f"no alert rule {rule_id}")
        self.rule_id = rule_id


class WebhookNotFound(LookupError):
    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"no webhook {webhook_id}")
        self.webhook_id = webhook_id


# -- rules --------------------------------------------------------------------------------------


def rule_json(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": str(rule.kind),
        "scope": rule.scope,
        "params": dict(rule.params),
        "enabled": rule.enabled,
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }


def list_rules(session: Session) -> list[dict[str, Any]]:
    return [rule_json(r) for r in session.scalars(select(AlertRule).order_by(AlertRule.id))]


def require_rule(session: Session, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise AlertRuleNotFound(rule_id)
    return rule


def _check_scope_target(session: Session, scope: str) -> None:
    """A scope must name something that exists (a rule for nobody would never fire)."""
    parsed = parse_scope("scope", scope)
    if parsed.kind == "customer":
        found = session.get(Customer, uuid.UUID(str(parsed.id))) is not None
    elif parsed.kind == "package":
        found = session.get(Package, int(str(parsed.id))) is not None
    elif parsed.kind == "router":
        found = session.get(Router, parsed.id) is not None or bool(
            session.scalar(select(exists().where(Customer.mikrotik_id == parsed.id)))
        )
    else:
        return
    if not found:
        raise InvalidFieldError("scope", scope, f"names no {parsed.kind} that exists")


def _flush(session: Session, what: str, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        # The one unique column besides the key; raw driver text is never passed on.
        if "name" in str(exc.orig):
            raise DuplicateNameError(what, name) from None
        raise


def _apply(target: Any, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(target, name, value)


def create_rule(session: Session, fields: dict[str, Any]) -> dict[str, Any]:
    rule = AlertRule()
    _apply(rule, {"scope": "all", "enabled": False, **fields})
    rule.check()
    _check_scope_target(session, rule.scope)
    session.add(rule)
    _flush(session, "alert rule", rule.name)
    session.refresh(rule)
    return rule_json(rule)


def update_rule(session: Session, rule_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    rule = require_rule(session, rule_id)
    _apply(rule, fields)
    rule.check()
    if "scope" in fields:
        _check_scope_target(session, rule.scope)
    _flush(session, "alert rule", rule.name)
    session.refresh(rule)
    return rule_json(rule)


def delete_rule(session: Session, rule_id: int) -> None:
    session.delete(require_rule(session, rule_id))


# -- webhooks -----------------------------------------------------------------------------------


def webhook_json(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "name": hook.name,
        "url": hook.url,
        "format": str(hook.format),
        "enabled": hook.enabled,
        "has_secret": bool(hook.secret),
        "created_at": iso(hook.created_at),
        "updated_at": iso(hook.updated_at),
    }


def list_webhooks(session: Session) -> list[dict[str, Any]]:
    return [webhook_json(h) for h in session.scalars(select(Webhook).order_by(Webhook.id))]


def require_webhook(session: Session, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise WebhookNotFound(webhook_id)
    return hook


def create_webhook(session: Session, fields: dict[str, Any]) -> dict[str, Any]:
    hook = Webhook()
    _apply(hook, {"format": "generic", "enabled": True, **fields})
    session.add(hook)
    _flush(session, "webhook", hook.name)
    session.refresh(hook)
    return webhook_json(hook)


def update_webhook(session: Session, webhook_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    hook = require_webhook(session, webhook_id)
    _apply(hook, fields)
    _flush(session, "webhook", hook.name)
    session.refresh(hook)
    return webhook_json(hook)


def delete_webhook(session: Session, webhook_id: int) -> None:
    """The webhook and its deliveries (pending ones are never sent)."""
    session.delete(require_webhook(session, webhook_id))


# -- deliveries ---------------------------------------------------------------------------------


def delivery_json(row: AlertDelivery, webhook_name: str) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "event_id": row.event_id,
        "event": str(row.event),
        "webhook_id": row.webhook_id,
        "webhook_name": webhook_name,
        "state": str(row.state),
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "expires_at": iso(row.expires_at),
        "last_error": row.last_error,
        "last_status": row.last_status,
        "delivered_at": iso(row.delivered_at),
        "dead_at": iso(row.dead_at),
        "created_at": iso(row.created_at),
        "payload": dict(row.payload),
    }


def list_deliveries(
    session: Session, *, state: str | None, webhook_id: int | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Newest first; `total` counts every match."""
    where = []
    if state is not None:
        where.append(AlertDelivery.state == DeliveryState(state))
    if webhook_id is not None:
        where.append(AlertDelivery.webhook_id == webhook_id)
    total = session.scalar(select(func.count()).select_from(AlertDelivery).where(*where)) or 0
    rows = session.execute(
        select(AlertDelivery, Webhook.name)
        .join(Webhook, Webhook.id == AlertDelivery.webhook_id)
        .where(*where)
        .order_by(AlertDelivery.created_at.desc(), AlertDelivery.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [delivery_json(row, name) for row, name in rows], total


def delivery_answer(session: Session, row: AlertDelivery) -> dict[str, Any]:
    hook = session.get(Webhook, row.webhook_id)
    return delivery_json(row, hook.name if hook is not None else "")
