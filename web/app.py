"""The Starlette application: `uvicorn web.app:app --port 8081` (settings.http_port).

Routes and middleware are each assembled in one function below, so the WebSocket
relay, authentication and /metrics slot in there without touching the REST code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from settings import Settings, get_settings
from web import declare
from web.errors import exception_handlers
from web.routes import endpoints
from web.state import STATE_KEY, open_state


def routes() -> list[BaseRoute]:
    """Every route of the app. The REST routes come from their declarations (web.routes);
    the WebSocket route (/ws) and /metrics belong in this list too."""
    return [*declare.routes(endpoints())]


def middleware() -> list[Middleware]:
    """Every middleware, outermost first: authentication (bearer token, session cookie,
    Origin checks) goes here. Request size limits live in web.declare, per endpoint."""
    return []


def create_app(settings: Settings | None = None) -> Starlette:
    """The app; `settings` default to get_settings(), read when the app starts (not at import)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_state(settings or get_settings()) as state:
            yield {STATE_KEY: state}

    return Starlette(
        routes=routes(),
        middleware=middleware(),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )


app = create_app()
