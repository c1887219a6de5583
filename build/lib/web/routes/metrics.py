"""GET /metrics: Prometheus text format (a plain route: a mount would redirect to /metrics/)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from web.declare import Call, Endpoint, Reply
from web.state import app_state


async def metrics(call: Call) -> Response:
    """This web process's metrics: monitors running, free slots, starts/stops/refusals,
    WebSocket clients and frames, relay lag, HTTP requests by route and status."""
    state = app_state(call.request)
    body = await state.run(state.metrics.render)  # reads the semaphore: not on the loop
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        "meta",
        (Reply(200, "Prometheus text exposition format", None, media_type="text/plain"),),
    ),
]
