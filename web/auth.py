"""Who may call the API and open the live feed.

With API_TOKEN set, every route but the public ones needs one of:
- `Authorization: Bearer <token>` (scripts, billing panels, Prometheus);
- the dashboard's session cookie, which `POST /api/session` hands out in exchange for
  the token: signed (HMAC-SHA256 with a key derived from the token, so changing the
  token logs every browser out), expiring (SESSION_MAX_AGE), HttpOnly, SameSite=Strict;
- on the WebSocket only: `Sec-WebSocket-Protocol: bearer.<token>` offered beside the
  non-secret `monitor.v1`, which is the one echoed back (browsers cannot set headers
  on a WebSocket handshake, and a token in the query string would end up in logs).
Every comparison with the token is constant-time, and wrong tokens are counted per
client address (web.throttle): a guesser gets 429s. Without API_TOKEN the app serves
openly, on loopback only unless WEB_ALLOW_OPEN (web.hosts), and says so loudly at start
and on /ready.

A state-changing request (POST, PUT, PATCH, DELETE) that carries an Origin must come
from the app's own host or an origin in ALLOWED_ORIGINS: the cookie is SameSite=Strict
and JSON bodies need a CORS preflight, and this third check holds even where a browser
or a proxy gets one of those wrong.

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
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.authentication import SimpleUser
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from settings import Settings
from web.errors import ForeignOrigin, TooManyAttempts, response_for
from web.throttle import AuthThrottle

COOKIE = "mtm_session"
SUBPROTOCOL = "monitor.v1"
BEARER_PROTOCOL_PREFIX = "bearer."

# Besides the REST endpoints declared public (web.declare): the dashboard's page and
# assets, which hold no data (the page asks /api/session whether to show a login).
PAGE_PATHS = frozenset({"/", "/favicon.ico"})
PAGE_PREFIXES = ("/static/",)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    """Who is asking, as a session's `requested_by` records it: "api" (bearer token),
    "dashboard" (session cookie), "anonymous" (no API_TOKEN set); None when API_TOKEN is
    set and the request carries no valid credentials."""
    if not settings.api_token:
        return "anonymous"
    bearer = _bearer(conn.headers)
    if bearer is not None and token_matches(bearer, settings):
        return "api"
    cookie = conn.cookies.get(COOKIE)
    if cookie and cookie_valid(cookie, settings):
        return "dashboard"
    return None


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


def client_address(conn: HTTPConnection) -> str:
    """The address wrong tokens are counted against (uvicorn's, proxies honoured only
    from FORWARDED_ALLOW_IPS)."""
    return conn.client.host if conn.client else "unknown"


class AuthMiddleware:
    """Refuses HTTP requests without credentials when API_TOKEN is set, state-changing
    requests from foreign origins, and bearer tokens from an address that guessed too
    often; records who asks in scope["user"] (Starlette's convention; sessions'
    requested_by reads it). WebSockets are checked by their endpoint, before accept,
    where the offered subprotocols are known."""

    def __init__(
        self, app: ASGIApp, settings: Settings, public_paths: frozenset[str], throttle: AuthThrottle
    ) -> None:
        self.app = app
        self.settings = settings
        self.public_paths = public_paths | PAGE_PATHS
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            conn = HTTPConnection(scope)
            refusal = self._refusal(conn)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            who = caller(conn, self.settings)
            if who is None and not self._public(scope["path"]):
                await unauthorized()(scope, receive, send)
                return
            if who is not None and who != "anonymous":
                scope["user"] = SimpleUser(who)
        await self.app(scope, receive, send)

    def _refusal(self, conn: HTTPConnection) -> Response | None:
        origin = conn.headers.get("origin")
        method = conn.scope["method"]
        if (
            method not in SAFE_METHODS
            and origin is not None
            and not origin_allowed(origin, conn.headers.get("host", ""), self.settings)
        ):
            return response_for(ForeignOrigin(origin, method))
        bearer = _bearer(conn.headers)
        if bearer is None or not self.settings.api_token:
            return None
        address = client_address(conn)
        wait = self.throttle.retry_after(address)
        if wait is not None:
            return response_for(TooManyAttempts(wait))
        if not token_matches(bearer, self.settings):
            self.throttle.failed(address)
        return None

    def _public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(PAGE_PREFIXES)


# -- WebSocket handshakes -------------------------------------------------------------------


def origin_allowed(origin: str, host: str, settings: Settings) -> bool:
    """The page's origin is this app (same host:port) or an allowed one ("null", the
    origin of a file:// page, only when ALLOWED_ORIGINS lists it)."""
    origin = origin.rstrip("/")
    if origin in settings.allowed_origins:
        return True
    if origin == "null":
        return False
    if "*" in settings.allowed_origins:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def offered_protocols(conn: HTTPConnection) -> list[str]:
    """The subprotocols the client offered (the ASGI server parses the header for us)."""
    return [str(p) for p in conn.scope.get("subprotocols", [])]


@dataclass(frozen=True)
class Refusal:
    """A refused handshake: the HTTP response, and the reason for the log line."""

    response: Response
    reason: str


def _origin_hint(origin: str) -> str:
    if origin == "null":
        return "a page opened from file:// sends Origin: null; ALLOWED_ORIGINS=null allows it"
    return f"add {origin[:100]} to ALLOWED_ORIGINS to allow it"


def websocket_refusal(conn: HTTPConnection, settings: Settings, throttle: AuthThrottle) -> Refusal | None:
    """Why this handshake is refused, or None to let it through. A handshake is one token
    attempt, whatever it offers, and may offer one bearer subprotocol only."""
    origin = conn.headers.get("origin")
    if origin is not None and not origin_allowed(origin, conn.headers.get("host", ""), settings):
        message = f"origin {origin[:100]!r} is not allowed (ALLOWED_ORIGINS)"
        return Refusal(forbidden(message), f"origin {origin[:100]!r} not allowed: {_origin_hint(origin)}")
    if not settings.api_token:
        return None
    offered = offered_protocols(conn)
    bearers = [p[len(BEARER_PROTOCOL_PREFIX) :] for p in offered if p.startswith(BEARER_PROTOCOL_PREFIX)]
    if len(bearers) > 1:
        message = "offer at most one bearer.<token> subprotocol"
        response = JSONResponse({"status": "error", "message": message, "code": "invalid_parameter"}, 400)
        return Refusal(response, f"auth: {len(bearers)} bearer subprotocols offered")
    header = _bearer(conn.headers)
    candidates = [c for c in (header, *bearers) if c is not None]
    if candidates:
        address = client_address(conn)
        wait = throttle.retry_after(address)
        if wait is not None:
            reason = f"auth: too many wrong tokens, {wait} s to wait"
            return Refusal(response_for(TooManyAttempts(wait)), reason)
        if not any(token_matches(c, settings) for c in candidates):
            throttle.failed(address)
            return Refusal(unauthorized("wrong token"), "auth: wrong token")
        if bearers and header is None and SUBPROTOCOL not in offered:
            message = f"offer the subprotocol {SUBPROTOCOL!r} beside the bearer one"
            return Refusal(unauthorized(message), f"auth: bearer subprotocol without {SUBPROTOCOL}")
        return None
    if caller(conn, settings) is not None:
        return None
    return Refusal(
        unauthorized("authentication required: Authorization header, bearer.<token> subprotocol or session"),
        "auth: no token or session",
    )


def accepted_subprotocol(conn: HTTPConnection) -> str | None:
    """Echo `monitor.v1` when offered (never the bearer protocol, which holds the token)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered_protocols(conn) else None
