"""Routers: where customers' mikrotik_ids point, how many monitors run on each, and
each router's view as its watch keeps it (top customers, online and unknown sessions).

The view routes read what the router's watch wrote last (web/queries/router_view.py):
one Redis read per answer, re-sorted and paged here, whatever the number of customers.
Before the watch's first cycle, while the router is unreachable, or with
ROUTER_WATCH=false, they answer 200 with `available: false` and the `reason`: that is
the router's state, not a failed request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.responses import JSONResponse, Response

from tasks import keys, runtime
from web.declare import Call, Endpoint, Param, Reply
from web.queries.router_view import (
    TOP_ORDERS,
    RouterNotFound,
    StoredView,
    parse_stored,
    ranked,
    router_name,
    sessions_answer,
    top_answer,
    unknown_answer,
)
from web.queries.routers import list_routers
from web.routes.common import DATABASE_ERRORS, REDIS_ERRORS
from web.state import AppState, app_state

TOP_MAX = 500
SESSIONS_DEFAULT = 100
SESSIONS_MAX = 1000


async def routers(call: Call) -> Response:
    """Every router: routers rows, plus each mikrotik_id that customers name without a row
    (monitored through the MIKROTIK_* default router). No credentials are shown."""
    state = app_state(call.request)

    def read() -> list[dict[str, Any]]:
        live = {holder.token for holder in runtime.current().semaphore.holders()}
        with state.db() as session:
            return list_routers(session, state.settings, live)

    return JSONResponse({"status": "ok", "routers": await state.run(read)})


async def _stored(state: AppState, router_id: str) -> tuple[str, StoredView, int]:
    """The router's name (404 when unknown), its stored view, and Redis's clock (ms)."""
    name = await state.run(_name_of, state, router_id)
    async with state.redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.hgetall(keys.router_view(router_id))
        (seconds, micros), fields = await pipe.execute()
    stored = await state.run(parse_stored, fields)  # up to a megabyte of JSON: off the loop
    return name, stored, int(seconds) * 1000 + int(micros) // 1000


def _name_of(state: AppState, router_id: str) -> str:
    with state.db() as session:
        return router_name(session, router_id)


async def _monitored(state: AppState, customer_ids: Iterable[str]) -> set[str]:
    ids = list(customer_ids)
    if not ids:
        return set()
    async with state.redis.pipeline(transaction=False) as pipe:
        for customer_id in ids:
            pipe.exists(keys.customer_owner(customer_id))
        found = await pipe.execute()
    return {customer_id for customer_id, n in zip(ids, found) if n}


async def router_top(call: Call) -> Response:
    """The router's customers using the most now, from its watch's latest cycle: `by`
    download, upload or utilization (the larger direction's share of the package), with
    the cycle's totals. Each row says whether a monitor runs for that customer."""
    state = app_state(call.request)
    router_id: str = call.params["router_id"]
    name, stored, now_ms = await _stored(state, router_id)
    rows = ranked(stored, state.settings, call.params["by"], call.params["limit"])
    monitored = await _monitored(state, (row["customer_id"] for row in rows))
    body = top_answer(
        router_id,
        name,
        stored,
        now_ms,
        state.settings,
        by=call.params["by"],
        limit=call.params["limit"],
        rows=rows,
        monitored=monitored,
    )
    return JSONResponse(body)


async def router_sessions(call: Call) -> Response:
    """The router's online PPPoE and hotspot sessions, by login: each with its customer
    (null for an unknown login), address, caller id, uptime and current rate."""
    state = app_state(call.request)
    router_id: str = call.params["router_id"]
    name, stored, now_ms = await _stored(state, router_id)
    body = sessions_answer(
        router_id,
        name,
        stored,
        now_ms,
        state.settings,
        q=call.params["q"],
        limit=call.params["limit"],
        offset=call.params["offset"],
    )
    return JSONResponse(body)


async def router_unknown_sessions(call: Call) -> Response:
    """Sessions whose login matches no customer of this router: counted and listed."""
    state = app_state(call.request)
    router_id: str = call.params["router_id"]
    name, stored, now_ms = await _stored(state, router_id)
    return JSONResponse(unknown_answer(router_id, name, stored, now_ms, state.settings))


_ROUTER = Param(
    "router_id",
    "path",
    {"type": "string", "minLength": 1, "maxLength": 100},
    "the router's id (routers.id, or a customer's mikrotik_id)",
    required=True,
)
_VIEW_RAISES: tuple[type[BaseException], ...] = (RouterNotFound, *DATABASE_ERRORS, *REDIS_ERRORS)

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
    Endpoint(
        "GET",
        "/api/routers/{router_id}/top",
        router_top,
        "The router's top customers now",
        "routers",
        (Reply(200, "the latest cycle's top customers and totals", "RouterTop"),),
        params=(
            _ROUTER,
            Param(
                "by",
                "query",
                {"type": "string", "enum": list(TOP_ORDERS), "default": "download"},
                "order: download, upload, or utilization of the package",
            ),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": TOP_MAX, "default": 50},
                "at most this many customers",
            ),
        ),
        raises=_VIEW_RAISES,
    ),
    Endpoint(
        "GET",
        "/api/routers/{router_id}/sessions",
        router_sessions,
        "The router's online sessions",
        "routers",
        (Reply(200, "one page of online sessions", "RouterSessions"),),
        params=(
            _ROUTER,
            Param(
                "q",
                "query",
                {"type": "string", "maxLength": 200},
                "only sessions whose login, address, caller id or customer name or username holds this text",
            ),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": SESSIONS_MAX, "default": SESSIONS_DEFAULT},
                "at most this many sessions",
            ),
            Param(
                "offset",
                "query",
                {"type": "integer", "minimum": 0, "maximum": 10_000_000, "default": 0},
                "skip this many",
            ),
        ),
        raises=_VIEW_RAISES,
    ),
    Endpoint(
        "GET",
        "/api/routers/{router_id}/unknown-sessions",
        router_unknown_sessions,
        "Sessions no customer has",
        "routers",
        (Reply(200, "the unknown sessions and how many", "RouterUnknownSessions"),),
        params=(_ROUTER,),
        raises=_VIEW_RAISES,
    ),
]
