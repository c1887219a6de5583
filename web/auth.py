"""Who may call the API and open the live feed.

With API_TOKEN set, every route but the public ones needs one of:
- `Authorization: Bearer <token>` (scripts, billing panels, Prometheus);
- the dashboard's session cookie, which `POST /api/session` hands out in exchange for
  the token: signed (HMAC-SHA256 with a key derived from the token, so changing the
  token logs every browser out), expiring (SESSION_MAX_AGE), HttpOnly, SameSite=Strict;
- on the WebSocket only: `Sec-WebSocket-Protocol: bearer.<token>` offered beside the
  non-secret `monitor.v1`, which is the one echoed back (browsers cannot set headers
  on a WebSocket handshake, and a token in the query string would end up in logs).
Every comparison with the token is constant-time. Without API_TOKEN the app serves
openly and says so loudly at start and on /ready.

A WebSocket handshake that carries an Origin must come from the app's own host or an
origin in ALLOWED_ORIGINS (CORS does not cover WebSockets: without this any web page a
logged-in operator visits could open the feed with the operator's cookie). Refusals
happen before `accept()`, as HTTP 401/403 responses, never as an accepted socket that
is closed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from settings import Settings

COOKIE = "mtm_session"
SUBPROTOCOL = "monitor.v1"
BEARER_PROTOCOL_PREFIX = "bearer."

# Reachable without credentials: liveness, the dashboard's page and assets (they hold
# no data), and the session routes that let the dashboard log in.
PUBLIC_PATHS = frozenset({"/health", "/", "/favicon.ico", "/api/session"})
PUBLIC_PREFIXES = ("/static/",)


def _key(settings: Settings) -> bytes:
    # Derived from the token (domain-separated), so there is no second secret to manage.
    return hashlib.sha256(b"mtm-session-v1:" + settings.api_token.get().encode()).digest()


def token_matches(candidate: str, settings: Settings) -> bool:
    expected = settings.api_token.get()
    return bool(expected) and hmac.compare_digest(candidate.encode(), expected.encode())


def issue_cookie(settings: Settings, now: float | None = None) -> str:
    """A signed session value: base64(JSON {exp, nonce}) "." base64(HMAC)."""
    issued = time.time() if now is None else now
    body = json.dumps({"exp": int(issued + settings.session_max_age), "n": secrets.token_hex(8)})
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_sign(payload, settings)}"


def cookie_valid(value: str, settings: Settings, now: float | None = None) -> bool:
    payload, sep, signature = value.partition(".")
    if not sep or not settings.api_token:
        return False
    if not hmac.compare_digest(signature.encode(), _sign(payload, settings).encode()):
        return False
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expires = int(body["exp"])
    except (ValueError, KeyError, TypeError):
        return False
    return (time.time() if now is None else now) < expires


def _sign(payload: str, settings: Settings) -> str:
    digest = hmac.new(_key(settings), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _bearer(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def caller(conn: HTTPConnection, settings: Settings) -> str | None:
    """Who is asking ("token", "session"), or None when the request carries no valid
    credentials. Without API_TOKEN everyone is "anonymous"."""
    if not settings.api_token:
        return "anonymous"
    bearer = _bearer(conn.headers)
    if bearer is not None and token_matches(bearer, settings):
        return "token"
    cookie = conn.cookies.get(COOKIE)
    if cookie and cookie_valid(cookie, settings):
        return "session"
    return None


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def unauthorized(
    message: str = "authentication required: send Authorization: Bearer <API_TOKEN>",
) -> Response:
    return JSONResponse(
        {"status": "error", "message": message, "code": "unauthorized"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="mikrotik-monitor"'},
    )


def forbidden(message: str) -> Response:
    return JSONResponse({"status": "error", "message": message, "code": "forbidden"}, status_code=403)


class AuthMiddleware:
    """Refuses HTTP requests without credentials when API_TOKEN is set (WebSockets are
    checked by their endpoint, before accept, where the subprotocol is known)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.settings.api_token and not is_public(scope["path"]):
            conn = HTTPConnection(scope)
            if caller(conn, self.settings) is None:
                await unauthorized()(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- WebSocket handshakes -------------------------------------------------------------------


def origin_allowed(origin: str, host: str, settings: Settings) -> bool:
    """The page's origin is this app (same host:port) or an allowed one."""
    origin = origin.rstrip("/")
    if "*" in settings.allowed_origins or origin in settings.allowed_origins:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def offered_protocols(headers: Headers) -> list[str]:
    raw = headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def websocket_refusal(conn: HTTPConnection, settings: Settings) -> Response | None:
    """The HTTP response that refuses this handshake, or None to let it through."""
    origin = conn.headers.get("origin")
    if origin is not None and not origin_allowed(origin, conn.headers.get("host", ""), settings):
        return forbidden(f"origin {origin[:100]!r} is not allowed (ALLOWED_ORIGINS)")
    if not settings.api_token or caller(conn, settings) is not None:
        return None
    for protocol in offered_protocols(conn.headers):
        if protocol.startswith(BEARER_PROTOCOL_PREFIX) and token_matches(
            protocol[len(BEARER_PROTOCOL_PREFIX) :], settings
        ):
            if SUBPROTOCOL not in offered_protocols(conn.headers):
                return unauthorized(f"offer the subprotocol {SUBPROTOCOL!r} beside the bearer one")
            return None
    return unauthorized(
        "authentication required: Authorization header, bearer.<token> subprotocol or session"
    )


def accepted_subprotocol(conn: HTTPConnection) -> str | None:
    """Echo `monitor.v1` when offered (never the bearer protocol, which holds the token)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered_protocols(conn.headers) else None
