"""Webhooks (list, read, create, change, delete) and their deliveries (list, retry a dead
one by hand). README, Webhooks.

A webhook's secret is accepted on writes and never returned (`has_secret`). Deleting a
webhook deletes its deliveries, pending ones included.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from models import InvalidFieldError
from models.enums import DeliveryState
from models.errors import DuplicateNameError
from tasks import alert_delivery
from web.declare import Call, Endpoint, Param, Reply
from web.queries import alerts as q
from web.routes.common import BROKER_ERRORS, DATABASE_ERRORS, page_params
from web.schemas import UUID
from web.state import app_state

MAX_PAGE = 500

WEBHOOK_ID = Param(
    "webhook_id",
    "path",
    {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "the webhook's id",
    required=True,
)


async def list_webhooks(call: Call) -> Response:
    """Every webhook, by id (secrets are never shown)."""
    state = app_state(call.request)

    def read() -> list[dict[str, Any]]:
        with state.db() as session:
            return q.list_webhooks(session)

    return JSONResponse({"status": "ok", "webhooks": await state.run(read)})


async def get_webhook(call: Call) -> Response:
    """One webhook."""
    state = app_state(call.request)

    def read() -> dict[str, Any]:
        with state.db() as session:
            return q.webhook_json(q.require_webhook(session, call.params["webhook_id"]))

    return JSONResponse({"status": "ok", "webhook": await state.run(read)})


async def create_webhook(call: Call) -> Response:
    """Create a webhook: every alert event from now on is POSTed to it, signed with `secret`."""
    state = app_state(call.request)

    def write() -> dict[str, Any]:
        with state.db.begin() as session:
            return q.create_webhook(session, dict(call.body))

    hook = await state.run(write)
    return JSONResponse({"status": "success", "message": "Webhook created", "webhook": hook}, 201)


async def update_webhook(call: Call) -> Response:
    """Change some fields of a webhook (a new secret signs the next attempt on)."""
    state = app_state(call.request)

    def write() -> dict[str, Any]:
        with state.db.begin() as session:
            return q.update_webhook(session, call.params["webhook_id"], dict(call.body))

    hook = await state.run(write)
    return JSONResponse({"status": "success", "message": "Webhook updated", "webhook": hook})


async def delete_webhook(call: Call) -> Response:
    """Delete a webhook and its deliveries."""
    state = app_state(call.request)
    webhook_id: int = call.params["webhook_id"]

    def write() -> None:
        with state.db.begin() as session:
            q.delete_webhook(session, webhook_id)

    await state.run(write)
    return JSONResponse({"status": "success", "message": "Webhook deleted", "webhook_id": webhook_id})


async def list_webhook_deliveries(call: Call) -> Response:
    """Deliveries, newest first: `state=dead` lists the dead letters (retry them with
    POST /api/webhook-deliveries/{delivery_id}/retry)."""
    state = app_state(call.request)
    p = call.params

    def read() -> tuple[list[dict[str, Any]], int]:
        with state.db() as session:
            return q.list_deliveries(
                session, state=p["state"], webhook_id=p["webhook_id"], limit=p["limit"], offset=p["offset"]
            )

    rows, total = await state.run(read)
    return JSONResponse(
        {"status": "ok", "deliveries": rows, "total": total, "limit": p["limit"], "offset": p["offset"]}
    )


async def retry_webhook_delivery(call: Call) -> Response:
    """Send a dead delivery again: pending, due now, with a new ALERT_DELIVERY_MAX_AGE
    window, and the same Idempotency-Key."""
    state = app_state(call.request)
    delivery_id: uuid.UUID = call.params["delivery_id"]

    def write() -> dict[str, Any]:
        with state.db.begin() as session:
            row = alert_delivery.revive(session, delivery_id, state.settings)
            return q.delivery_answer(session, row)

    answer = await state.run(write)
    await state.run(alert_delivery.enqueue, str(delivery_id))
    return JSONResponse({"status": "success", "message": "Delivery queued", "delivery": answer})


_DB = DATABASE_ERRORS
_WRITE_RAISES = (InvalidFieldError, DuplicateNameError, *_DB)

ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/webhooks",
        list_webhooks,
        "List webhooks",
        "alerts",
        (Reply(200, "every webhook", "WebhookList"),),
        raises=_DB,
    ),
    Endpoint(
        "POST",
        "/api/webhooks",
        create_webhook,
        "Create a webhook",
        "alerts",
        (Reply(201, "created", "WebhookWritten"),),
        body="WebhookCreate",
        raises=_WRITE_RAISES,
    ),
    Endpoint(
        "GET",
        "/api/webhooks/{webhook_id}",
        get_webhook,
        "Read a webhook",
        "alerts",
        (Reply(200, "the webhook", "WebhookReply"),),
        params=(WEBHOOK_ID,),
        raises=(q.WebhookNotFound, *_DB),
    ),
    Endpoint(
        "PATCH",
        "/api/webhooks/{webhook_id}",
        update_webhook,
        "Change a webhook",
        "alerts",
        (Reply(200, "updated", "WebhookWritten"),),
        params=(WEBHOOK_ID,),
        body="WebhookUpdate",
        raises=(q.WebhookNotFound, *_WRITE_RAISES),
    ),
    Endpoint(
        "DELETE",
        "/api/webhooks/{webhook_id}",
        delete_webhook,
        "Delete a webhook and its deliveries",
        "alerts",
        (Reply(200, "deleted", "WebhookDeleted"),),
        params=(WEBHOOK_ID,),
        raises=(q.WebhookNotFound, *_DB),
    ),
    Endpoint(
        "GET",
        "/api/webhook-deliveries",
        list_webhook_deliveries,
        "List webhook deliveries (state=dead: the dead letters)",
        "alerts",
        (Reply(200, "one page of deliveries and the total", "WebhookDeliveryList"),),
        params=(
            Param(
                "state",
                "query",
                {"type": "string", "enum": [s.value for s in DeliveryState]},
                "only deliveries in this state",
            ),
            Param(
                "webhook_id",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "only this webhook's deliveries",
            ),
            *page_params(MAX_PAGE),
        ),
        raises=_DB,
    ),
    Endpoint(
        "POST",
        "/api/webhook-deliveries/{delivery_id}/retry",
        retry_webhook_delivery,
        "Retry a dead delivery by hand",
        "alerts",
        (Reply(200, "queued again", "WebhookDeliveryRetried"),),
        params=(
            Param(
                "delivery_id",
                "path",
                UUID,
                "the delivery's id (its Idempotency-Key)",
                required=True,
                convert=uuid.UUID,
            ),
        ),
        raises=(alert_delivery.DeliveryNotFound, alert_delivery.DeliveryNotDead, *_DB, *BROKER_ERRORS),
    ),
]
