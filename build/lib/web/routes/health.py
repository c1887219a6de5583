"""Liveness (/health: the process answers) and readiness (/ready: it can do its job)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from web.declare import Call, Endpoint, Reply
from web.readiness import readiness
from web.state import app_state


async def health(call: Call) -> Response:
    """The process is alive; touches nothing else (use /ready for dependencies)."""
    return JSONResponse({"status": "ok"})


async def ready(call: Call) -> Response:
    """PostgreSQL, Redis, a monitors worker and the reconciler (beat), each with its detail.

    503 names what is missing. `auth` tells whether API_TOKEN is set."""
    state = app_state(call.request)
    checks = await readiness(state)
    auth = "enabled" if state.settings.api_token else "disabled"
    failed = [name for name, check in checks.items() if not check["ok"]]
    if not failed:
        return JSONResponse({"status": "ok", "checks": checks, "auth": auth})
    body = {
        "status": "error",
        "code": "not_ready",
        "message": "not ready: " + ", ".join(failed),
        "checks": checks,
        "auth": auth,
    }
    return JSONResponse(body, status_code=503)


ENDPOINTS = [
    Endpoint("GET", "/health", health, "Liveness", "meta", (Reply(200, "alive", "Health"),), public=True),
    Endpoint(
        "GET",
        "/ready",
        ready,
        "Readiness, check by check",
        "meta",
        (
            Reply(200, "every check passed", "Ready"),
            Reply(503, "a check failed; `message` names which", "Ready"),
        ),
    ),
]
