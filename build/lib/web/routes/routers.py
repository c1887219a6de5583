"""Routers: where customers' mikrotik_ids point, and how many monitors run on each."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from tasks import runtime
from web.declare import Call, Endpoint, Reply
from web.queries.routers import list_routers
from web.routes.common import DATABASE_ERRORS, REDIS_ERRORS
from web.state import app_state


async def routers(call: Call) -> Response:
    """Every router: routers rows, plus each mikrotik_id that customers name without a row
    (monitored through the MIKROTIK_* default router). No credentials are shown."""
    state = app_state(call.request)

    def read() -> list[dict[str, Any]]:
        live = {holder.token for holder in runtime.current().semaphore.holders()}
        with state.db() as session:
            return list_routers(session, state.settings, live)

    return JSONResponse({"status": "ok", "routers": await state.run(read)})


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/routers",
        routers,
        "Routers and their monitors",
        "routers",
        (Reply(200, "every router", "Routers"),),
        raises=(*DATABASE_ERRORS, *REDIS_ERRORS),
    ),
]
