"""Which Host a request may name, and where an open (token-less) app answers.

DNS rebinding: a page on attacker.example whose name is re-pointed at 127.0.0.1 reaches
this app as its own origin in the operator's browser, cookies and CORS notwithstanding;
only the Host header still says attacker.example. So a request is served only when its
Host is
- a loopback name or address (localhost, 127.0.0.0/8, ::1),
- the address the request arrived at (an address literal cannot be rebound; with
  WEB_HOST=0.0.0.0 this is "the bound address"),
- WEB_HOST itself, or
- listed in TRUSTED_HOSTS (`*.example.net` matches its subdomains): the names a reverse
  proxy or the operators use.
Anything else gets 400 `invalid_host` (HTTP) or a refused handshake (WebSocket), and a
WARNING naming the host and the peer.

Like Redis's protected mode, an app without API_TOKEN also refuses requests that
arrive on a non-loopback address, unless WEB_ALLOW_OPEN says serving openly is meant
(python -m web refuses to bind beyond loopback in that case already; this covers
`uvicorn --host 0.0.0.0 web.app:app`).

Starlette's TrustedHostMiddleware checks names only; this one also knows the arrival
address and answers in the API's error shape.
"""

from __future__ import annotations

import ipaddress
import logging

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from settings import Settings

log = logging.getLogger(__name__)


def host_name(header: str) -> str:
    """The host part of a Host header, lower-cased, without port or brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True  # browsers resolve these to loopback themselves (RFC 6761)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _listed(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def _arrival(scope: Scope) -> str | None:
    server = scope.get("server")
    return str(server[0]).lower() if server else None


def peer(scope: Scope) -> str:
    """host:port of the client, for log lines."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown peer"


def refusal(scope: Scope, settings: Settings) -> tuple[int, str, str] | None:
    """(status, code, message) refusing this request, or None to serve it."""
    arrival = _arrival(scope)
    if not settings.api_token and not settings.web_allow_open and arrival and not is_loopback(arrival):
        return (
            403,
            "open_mode_loopback_only",
            "API_TOKEN is not set, so this server answers on loopback only: set API_TOKEN "
            "(or WEB_ALLOW_OPEN=true to serve without one)",
        )
    headers = dict(scope.get("headers") or [])
    raw = headers.get(b"host", b"").decode("latin-1")
    host = host_name(raw)
    if not host:
        return 400, "invalid_host", "the request has no Host header"
    trusted = (
        is_loopback(host)
        or (arrival is not None and _same_address(host, arrival))
        or _same_address(host, settings.web_host.lower())
        or _listed(host, settings.trusted_hosts)
    )
    if trusted:
        return None
    message = f"host {raw[:100]!r} is not served here (TRUSTED_HOSTS lists the names to accept)"
    return 400, "invalid_host", message


class HostCheck:
    """Refuses requests and handshakes whose Host is not trusted (see the module doc)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = refusal(scope, self.settings)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, code, message = refused
        log.warning("refused %s %s from %s: %s", _kind(scope), scope.get("path", ""), peer(scope), message)
        response: Response = JSONResponse(
            {"status": "error", "code": code, "message": message}, status_code=status
        )
        if scope["type"] == "http":
            await response(scope, receive, send)
        else:
            await WebSocket(scope, receive, send).send_denial_response(response)


def _kind(scope: Scope) -> str:
    return "WebSocket handshake" if scope["type"] == "websocket" else f"HTTP {scope.get('method', '')}"
