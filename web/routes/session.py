"""The dashboard's login: exchange API_TOKEN for a session cookie, and log out.

Scripts send `Authorization: Bearer <token>` on every call instead. These routes are
public (the dashboard must be able to ask whether it needs to log in).
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from web.auth import COOKIE, caller, client_address, issue_cookie, token_matches
from web.declare import Call, Endpoint, Reply
from web.errors import AuthDisabled, TooManyAttempts, WrongToken
from web.state import app_state


async def session_status(call: Call) -> Response:
    """Whether API_TOKEN is set, whether this request is authenticated, and the line
    diagnosis' thresholds (the dashboard's verdict uses the report's: one place, the settings)."""
    settings = app_state(call.request).settings
    who = caller(call.request, settings)
    return JSONResponse(
        {
            "status": "ok",
            "auth": "enabled" if settings.api_token else "disabled",
            "authenticated": who is not None,
            "diagnosis": {
                "rtt_rise_ms": settings.diag_rtt_rise_ms,
                "min_probes": settings.diag_min_probes,
            },
        }
    )


async def log_in(call: Call) -> Response:
    """Exchange the API token for the dashboard's session cookie (HttpOnly, SameSite=Strict,
    signed, expiring after SESSION_MAX_AGE seconds; Secure over HTTPS, directly or through
    a proxy in FORWARDED_ALLOW_IPS, or always with COOKIE_SECURE). Wrong tokens are
    counted per address (web.throttle)."""
    state = app_state(call.request)
    settings = state.settings
    if not settings.api_token:
        raise AuthDisabled()
    address = client_address(call.request)
    wait = state.throttle.retry_after(address)
    if wait is not None:
        raise TooManyAttempts(wait)
    if not token_matches(str(call.body["token"]), settings):
        state.throttle.failed(address)
        raise WrongToken()
    response = JSONResponse(
        {"status": "success", "message": "Logged in", "expires_in": settings.session_max_age}
    )
    response.set_cookie(
        COOKIE,
        issue_cookie(settings),
        max_age=settings.session_max_age,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure or call.request.url.scheme == "https",
        path="/",
    )
    return response


async def log_out(call: Call) -> Response:
    """Forget the session cookie."""
    response = JSONResponse({"status": "success", "message": "Logged out"})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/session",
        session_status,
        "Is a login needed?",
        "session",
        (Reply(200, "", "SessionStatus"),),
        public=True,
    ),
    Endpoint(
        "POST",
        "/api/session",
        log_in,
        "Log in with the API token",
        "session",
        (Reply(200, "logged in; the cookie is set", "LoggedIn"),),
        body="Login",
        raises=(WrongToken, TooManyAttempts, AuthDisabled),
        public=True,
    ),
    Endpoint(
        "DELETE",
        "/api/session",
        log_out,
        "Log out",
        "session",
        (Reply(200, "the cookie is cleared", "LoggedOut"),),
        public=True,
    ),
]
