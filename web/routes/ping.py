"""A one-shot ping of a customer from its router (tasks/service/ping.py)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from models.resolution import CustomerNotActive, CustomerNotFound, InvalidCustomerId, ResolutionError
from tasks import service
from web.declare import Call, Endpoint, Param, Reply
from web.routes.common import DATABASE_ERRORS, customer_id_param
from web.state import app_state

DEFAULT_COUNT = 4


async def ping_customer(call: Call) -> Response:
    """Ping the customer's current address from its router, `count` probes one second
    apart (the answer takes about that many seconds): each probe's round trip or the
    router's status for it, and the totals. The address is the static IP, or the one the
    PPPoE or hotspot session holds now; a customer with no session is `customer_offline`."""
    state = app_state(call.request)
    answer = await state.run(service.ping, call.params["customer_id"], call.params["count"])
    return JSONResponse(answer)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/customers/{customer_id}/ping",
        ping_customer,
        "Ping a customer from its router",
        "customers",
        (Reply(200, "every probe and the totals", "Ping"),),
        params=(
            customer_id_param("path"),
            Param(
                "count",
                "query",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": service.MAX_PING_COUNT,
                    "default": DEFAULT_COUNT,
                },
                "how many probes, one a second",
            ),
        ),
        raises=(
            InvalidCustomerId,
            CustomerNotFound,
            CustomerNotActive,
            ResolutionError,
            service.InvalidPingCount,
            service.CustomerOffline,
            service.RouterUnreachable,
            service.RouterFailed,
            service.DatabaseUnavailable,
            *DATABASE_ERRORS,
        ),
    ),
]
