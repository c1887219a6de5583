"""The Starlette application: `uvicorn web.app:app --port 8081` (settings.http_port).

Routes and middleware are each assembled in one function below. Run uvicorn with
WebSocket pings on (`--ws-ping-interval 20 --ws-ping-timeout 20`, the defaults) so a
dashboard whose network vanished is noticed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from settings import Settings, get_settings
from web import declare, page
from web.auth import AuthMiddleware
from web.errors import exception_handlers
from web.hosts import HostCheck
from web.metrics import HttpMetrics, WebMetrics
from web.routes import endpoints
from web.state import STATE_KEY, app_state, open_state
from web.throttle import AuthThrottle
from web.ws import Feed

log = logging.getLogger(__name__)


async def live_feed(websocket: WebSocket) -> None:
    """/ws: the seed's live feed, resumable by id (web/ws.py)."""
    state = app_state(websocket)
    feed = Feed(websocket, state)
    await feed.serve()


def routes() -> list[BaseRoute]:
    """Every route of the app: the REST routes from their declarations, /ws, and the
    dashboard (its page at / and its files under /static: web/page.py)."""
    return [*declare.routes(endpoints()), WebSocketRoute("/ws", live_feed), *page.routes()]


def middleware(settings: Settings, metrics: WebMetrics, throttle: AuthThrottle) -> list[Middleware]:
    """Every middleware, outermost first. Request size limits live in web.declare."""
    public = frozenset(e.path for e in endpoints() if e.public)
    return [
        Middleware(HttpMetrics, metrics=metrics),
        # Before anything answers: a rebound host name gets nothing (web/hosts.py).
        Middleware(HostCheck, settings=settings),
        # REST from other origins only where ALLOWED_ORIGINS says so (the WebSocket's
        # Origin is checked by web.auth: CORS does not cover WebSockets).
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=True,
        ),
        Middleware(AuthMiddleware, settings=settings, public_paths=public, throttle=throttle),
    ]


def _log_to_stderr(settings: Settings) -> None:
    """uvicorn configures its own loggers only: without a handler the app's lines would
    lose their level (WARNING and up) or vanish (INFO). A host that set up logging (a
    test runner, an embedding application) keeps its own."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=settings.log_level, format="%(levelname)s:  %(name)s: %(message)s")


def create_app(settings: Settings | None = None) -> Starlette:
    """The app for `settings` (default: get_settings())."""
    settings = settings or get_settings()
    metrics = WebMetrics()
    throttle = AuthThrottle(settings.auth_max_failures, settings.auth_failure_window)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        _log_to_stderr(settings)
        if not settings.api_token:
            log.warning(
                "API_TOKEN is not set: the API, the live feed and the dashboard are open to anyone "
                "who can reach this port (set API_TOKEN to require a token)"
            )
        async with open_state(settings, metrics, throttle) as state:
            yield {STATE_KEY: state}

    return Starlette(
        routes=routes(),
        middleware=middleware(settings, metrics, throttle),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )


app = create_app()
