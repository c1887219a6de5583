"""Alerts: list them, acknowledge one (README, Alerts).

Alerts are opened and resolved by the evaluators (tasks/alert_hooks.py); the API reads
them and records who acknowledged one. Acknowledging is idempotent: the first call
stamps the alert and announces `alert_acknowledged` (stream and webhooks), later ones
answer the same alert and announce nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from tasks import alerts, runtime
from web.declare import Call, Endpoint, Param, Reply
from web.routes.common import DATABASE_ERRORS, page_params, requested_by
from web.schemas import UUID
from web.state import app_state

MAX_PAGE = 500


async def list_alerts(call: Call) -> Response:
    """Alerts newest first: `state=open` (the default) those firing now, `resolved` the
    history, `all` both."""
    state = app_state(call.request)
    p = call.params

    def read() -> tuple[list[dict[str, Any]], int]:
        with state.db() as session:
            return alerts.list_alerts(session, p["state"], p["limit"], p["offset"])

    rows, total = await state.run(read)
    return JSONResponse(
        {"status": "ok", "alerts": rows, "total": total, "limit": p["limit"], "offset": p["offset"]}
    )


async def acknowledge_alert(call: Call) -> Response:
    """Acknowledge an alert (open or resolved): who did it is the caller, as a monitor
    start records it."""
    state = app_state(call.request)
    alert_id: uuid.UUID = call.params["alert_id"]
    by = requested_by(call.request)

    def write() -> tuple[dict[str, Any], alerts.Change | None]:
        with state.db.begin() as session:
            return alerts.acknowledge(session, alert_id, by, state.settings)

    answer, change = await state.run(write)
    if change is not None:
        await state.run(alerts.publish, runtime.current().redis, change, state.settings)
        state.metrics.alert_transitions.labels(change.event.value).inc()
    return JSONResponse({"status": "success", "message": "Alert acknowledged", "alert": answer})


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/alerts",
        list_alerts,
        "List alerts (open, resolved or all), newest first",
        "alerts",
        (Reply(200, "one page of alerts and the total", "AlertList"),),
        params=(
            Param(
                "state",
                "query",
                {"type": "string", "enum": list(alerts.STATES), "default": "open"},
                "open: firing now; resolved: the history; all: both",
            ),
            *page_params(MAX_PAGE),
        ),
        raises=DATABASE_ERRORS,
    ),
    Endpoint(
        "POST",
        "/api/alerts/{alert_id}/acknowledge",
        acknowledge_alert,
        "Acknowledge an alert (idempotent)",
        "alerts",
        (Reply(200, "the alert, acknowledged", "AlertAcknowledged"),),
        params=(Param("alert_id", "path", UUID, "the alert's id", required=True, convert=uuid.UUID),),
        raises=(alerts.AlertNotFound, *DATABASE_ERRORS),
    ),
]
