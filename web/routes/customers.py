"""Customers: search and page, read, create, update, delete.

Passwords (pppoe_password, hotspot_password) are accepted on writes and never
returned: answers carry has_pppoe_password / has_hotspot_password instead.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from models import DuplicateCustomerError, InvalidFieldError
from models.resolution import CustomerNotFound, InvalidCustomerId
from tasks import service
from web.declare import Call, Endpoint, Param, Reply
from web.queries import customers as q
from web.routes.common import (
    BROKER_ERRORS,
    DATABASE_ERRORS,
    REDIS_ERRORS,
    customer_id_param,
    page_params,
    requested_by,
)
from web.schemas import SCHEMAS
from web.state import AppState, app_state

MAX_PAGE = 500

_WRITABLE = SCHEMAS["CustomerCreate"]["properties"]

LIST_PARAMS = (
    Param(
        "q",
        "query",
        {"type": "string", "maxLength": 100},
        "case-insensitive substring of name, username, pppoe_username or hotspot_username",
    ),
    Param("router", "query", {"type": "string", "maxLength": 50}, "only customers of this mikrotik_id"),
    Param("service_type", "query", _WRITABLE["service_type"], "only this service type"),
    Param("status", "query", _WRITABLE["status"], "only this customer status"),
    Param("monitored", "query", {"type": "boolean"}, "true: only customers with an open monitor session"),
    Param(
        "monitored_first",
        "query",
        {"type": "boolean", "default": False},
        "list monitored customers before the others (then by name)",
    ),
    Param(
        "exact_total",
        "query",
        {"type": "boolean", "default": False},
        "count every match for `total`; by default the count stops 1,000 matches past the page "
        "(`total_capped` says so)",
    ),
    *page_params(MAX_PAGE),
)


async def list_customers(call: Call) -> Response:
    """Search customers by text and filters, sorted by name (monitored ones first on request).

    `total` counts the matches over all pages: exactly up to 1,000 past this page's end;
    beyond that it is that bound and `total_capped` is true (`exact_total=true` counts all)."""
    p = call.params
    state = app_state(call.request)
    found = q.CustomerFilter(
        q=p["q"],
        router=p["router"],
        service_type=p["service_type"],
        status=p["status"],
        monitored=p["monitored"],
    )

    def read() -> q.CustomerPage:
        with state.db() as session:
            return q.list_customers(
                session,
                found,
                limit=p["limit"],
                offset=p["offset"],
                monitored_first=p["monitored_first"],
                exact_total=p["exact_total"],
            )

    page = await state.run(read)
    return JSONResponse(q.page_json(page, limit=p["limit"], offset=p["offset"]))


async def get_customer(call: Call) -> Response:
    """One customer, with its package and whether it is monitored."""
    state = app_state(call.request)

    def read() -> dict[str, Any]:
        with state.db() as session:
            return q.get_customer(session, call.params["customer_id"])

    return JSONResponse({"status": "ok", "customer": await state.run(read)})


async def create_customer(call: Call) -> Response:
    """Create a customer; the data layer validates every field (MACs, IPs, usernames per router)."""
    state = app_state(call.request)

    def write() -> dict[str, Any]:
        with state.db.begin() as session:
            return q.create_customer(session, dict(call.body))

    customer = await state.run(write)
    return JSONResponse({"status": "success", "message": "Customer created", "customer": customer}, 201)


async def update_customer(call: Call) -> Response:
    """Change some fields of a customer; null clears an optional field (a password too)."""
    state = app_state(call.request)

    def write() -> dict[str, Any]:
        with state.db.begin() as session:
            return q.update_customer(session, call.params["customer_id"], dict(call.body))

    customer = await state.run(write)
    return JSONResponse({"status": "success", "message": "Customer updated", "customer": customer})


async def delete(state: AppState, customer_id: uuid.UUID, requested_by: str) -> Response:
    """Stop the customer's monitor (if any) through the service, then delete the row."""

    def monitored() -> bool:
        with state.db() as session:
            q.require_customer(session, customer_id)
            return q.is_monitored(session, customer_id)

    stopped = False
    if await state.run(monitored):
        try:
            await state.run(service.stop, customer_id, requested_by=f"{requested_by}: customer deleted")
            stopped = True
        except service.NotMonitored:
            pass  # stopped by someone else in the meantime

    def remove() -> None:
        with state.db.begin() as session:
            q.delete_customer(session, customer_id)

    await state.run(remove)
    return JSONResponse(
        {
            "status": "success",
            "message": "Customer deleted",
            "customer_id": str(customer_id),
            "monitor_stopped": stopped,
        }
    )


async def delete_customer(call: Call) -> Response:
    """Delete a customer. A running monitor is stopped first (its `stopped` event says
    "customer deleted"); the customer's session history goes with the row."""
    return await delete(app_state(call.request), call.params["customer_id"], requested_by(call.request))


_ID = customer_id_param("path")
_DB = DATABASE_ERRORS

ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/customers",
        list_customers,
        "Search customers",
        "customers",
        (Reply(200, "one page of customers and the total", "CustomerList"),),
        params=LIST_PARAMS,
        raises=_DB,
    ),
    Endpoint(
        "POST",
        "/api/customers",
        create_customer,
        "Create a customer",
        "customers",
        (Reply(201, "created", "CustomerWritten"),),
        body="CustomerCreate",
        raises=(InvalidFieldError, DuplicateCustomerError, *_DB),
    ),
    Endpoint(
        "GET",
        "/api/customers/{customer_id}",
        get_customer,
        "Read a customer",
        "customers",
        (Reply(200, "the customer", "CustomerReply"),),
        params=(_ID,),
        raises=(InvalidCustomerId, CustomerNotFound, *_DB),
    ),
    Endpoint(
        "PATCH",
        "/api/customers/{customer_id}",
        update_customer,
        "Update some fields of a customer",
        "customers",
        (Reply(200, "updated", "CustomerWritten"),),
        params=(_ID,),
        body="CustomerUpdate",
        raises=(InvalidCustomerId, CustomerNotFound, InvalidFieldError, DuplicateCustomerError, *_DB),
    ),
    Endpoint(
        "DELETE",
        "/api/customers/{customer_id}",
        delete_customer,
        "Delete a customer (stopping its monitor first)",
        "customers",
        (Reply(200, "deleted", "CustomerDeleted"),),
        params=(_ID,),
        raises=(InvalidCustomerId, CustomerNotFound, *_DB, *REDIS_ERRORS, *BROKER_ERRORS),
    ),
]
