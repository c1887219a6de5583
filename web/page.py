"""The dashboard: one HTML page at `/` and its static files under `/static`.

Plain JavaScript modules (web/static/js/), uPlot vendored (web/static/vendor/uplot/),
no build step and nothing from another origin: the page's Content-Security-Policy
allows scripts, styles, images and connections from this app only, and no inline
script or style, so a dependency on a CDN or an injected script fails loudly.

The page and its assets are public (web.auth.PAGE_PATHS): they hold no data. The page
asks `GET /api/session` whether to show its login form.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # 'self' covers ws:// and wss:// to this host (CSP level 3).
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is tiny and changes with each release; its modules are revalidated too.
    "Cache-Control": "no-cache",
}


@cache
def _page() -> bytes:
    return (STATIC_DIR / "index.html").read_bytes()


async def dashboard(request: Request) -> Response:
    """The dashboard's only page."""
    return HTMLResponse(_page(), headers=PAGE_HEADERS)


class PageFiles(StaticFiles):
    """The dashboard's files, with the page's headers: a module or stylesheet opened on
    its own is as locked down (CSP, nosniff, no framing) as the page that loads it."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def routes() -> list[BaseRoute]:
    """`/` (the page) and `/static` (its modules, styles and the vendored chart library)."""
    return [
        Route("/", dashboard, methods=["GET"]),
        Mount("/static", app=PageFiles(directory=STATIC_DIR), name="static"),
    ]
