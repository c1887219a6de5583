"""Alert rules: list, read, create, change, delete (README, Alerts).

A rule is evaluated only while `enabled`; the shipped ones start disabled. The data
layer checks a rule's parameters against its kind (models/alert_rule.py); a PATCH
gives both or neither, so its body alone says whether they fit.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from models import InvalidFieldError
from models.errors import DuplicateNameError
from web.declare import Call, Endpoint, Param, Reply
from web.queries import alerts as q
from web.routes.common import DATABASE_ERRORS
from web.state import app_state

RULE_ID = Param(
    "rule_id",
    "path",
    {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "the rule's id",
    required=True,
)


async def list_alert_rules(call: Call) -> Response:
    """Every alert rule, by id."""
    state = app_state(call.request)

    def read() -> list[dict[str, Any]]:
        with state.db() as session:
            return q.list_rules(session)

    return JSONResponse({"status": "ok", "rules": await state.run(read)})


async def get_alert_rule(call: Call) -> Response:
    """One alert rule."""
    state = app_state(call.request)

    def read() -> dict[str, Any]:
        with state.db() as session:
            return q.rule_json(q.require_rule(session, call.params["rule_id"]))

    return JSONResponse({"status": "ok", "rule": await state.run(read)})


async def create_alert_rule(call: Call) -> Response:
    """Create a rule: a kind, its parameters, a scope (default all); disabled unless
    `enabled` says otherwise."""
    state = app_state(call.request)

    def write() -> dict[str, Any]:
        with state.db.begin() as session:
            return q.create_rule(session, dict(call.body))

    rule = await state.run(write)
    return JSONResponse({"status": "success", "message": "Alert rule created", "rule": rule}, 201)


async def update_alert_rule(call: Call) -> Response:
    """Change some fields of a rule (`kind` and `params` together: `params` is replaced whole)."""
    state = app_state(call.request)

    def write() -> dict[str, Any]:
        with state.db.begin() as session:
            return q.update_rule(session, call.params["rule_id"], dict(call.body))

    rule = await state.run(write)
    return JSONResponse({"status": "success", "message": "Alert rule updated", "rule": rule})


async def delete_alert_rule(call: Call) -> Response:
    """Delete a rule."""
    state = app_state(call.request)
    rule_id: int = call.params["rule_id"]

    def write() -> None:
        with state.db.begin() as session:
            q.delete_rule(session, rule_id)

    await state.run(write)
    return JSONResponse({"status": "success", "message": "Alert rule deleted", "rule_id": rule_id})


_DB = DATABASE_ERRORS
_WRITE_RAISES = (InvalidFieldError, DuplicateNameError, *_DB)

ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/alert-rules",
        list_alert_rules,
        "List alert rules",
        "alerts",
        (Reply(200, "every rule", "AlertRuleList"),),
        raises=_DB,
    ),
    Endpoint(
        "POST",
        "/api/alert-rules",
        create_alert_rule,
        "Create an alert rule",
        "alerts",
        (Reply(201, "created", "AlertRuleWritten"),),
        body="AlertRuleCreate",
        raises=_WRITE_RAISES,
    ),
    Endpoint(
        "GET",
        "/api/alert-rules/{rule_id}",
        get_alert_rule,
        "Read an alert rule",
        "alerts",
        (Reply(200, "the rule", "AlertRuleReply"),),
        params=(RULE_ID,),
        raises=(q.AlertRuleNotFound, *_DB),
    ),
    Endpoint(
        "PATCH",
        "/api/alert-rules/{rule_id}",
        update_alert_rule,
        "Change an alert rule",
        "alerts",
        (Reply(200, "updated", "AlertRuleWritten"),),
        params=(RULE_ID,),
        body="AlertRuleUpdate",
        raises=(q.AlertRuleNotFound, *_WRITE_RAISES),
    ),
    Endpoint(
        "DELETE",
        "/api/alert-rules/{rule_id}",
        delete_alert_rule,
        "Delete an alert rule",
        "alerts",
        (Reply(200, "deleted", "AlertRuleDeleted"),),
        params=(RULE_ID,),
        raises=(q.AlertRuleNotFound, *_DB),
    ),
]
