"""`python -m web`: serve web.app:app on WEB_HOST and WEB_PORT (else the seed's WS_PORT, 8081).

Like Redis's protected mode, it refuses to serve without API_TOKEN on an address beyond
loopback unless WEB_ALLOW_OPEN=true says that is meant (and web.hosts refuses such
requests however the app is started).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn

from settings import Settings, SettingsError, get_settings
from web.hosts import is_loopback

# The WebSocket implementation and its keepalive: wsproto marks a refused handshake
# (401/403 before accept) as complete, where websockets-sansio logs a spurious ERROR for
# every refusal (uvicorn PR #3138); its protocol here writes each client's frames of one
# event-loop pass in one system call, not one each (web/wsprotocol.py). Protocol pings
# find dashboards whose network vanished (no pong within the timeout: uvicorn closes
# with 1011). No permessage-deflate: compressing every 700-byte frame for every client
# costs CPU and per-connection memory (uvicorn #1862) for little gain on a LAN.
UVICORN_WS: dict[str, Any] = {
    "ws": "web.wsprotocol:CoalescingWSProtocol",
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "ws_per_message_deflate": False,
}


def open_bind_refusal(settings: Settings) -> str | None:
    """Why serving on WEB_HOST without a token is refused, or None."""
    if settings.api_token or settings.web_allow_open or is_loopback(settings.web_host.lower()):
        return None
    return (
        f"refusing to serve on WEB_HOST={settings.web_host} without API_TOKEN: anyone who can "
        "reach the port could read and change customers and start monitors. Set API_TOKEN "
        "(`mtmon token` makes one), bind to 127.0.0.1, or set WEB_ALLOW_OPEN=true if an open "
        "API is really meant"
    )


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog="python -m web",
        description="Serve the dashboard, the REST API and the /ws live feed (uvicorn, one process).",
        epilog="Settings come from the environment, then .env: WEB_HOST (default 127.0.0.1), "
        "WEB_PORT (else WS_PORT, default 8081), API_TOKEN, WEB_ALLOW_OPEN, TRUSTED_HOSTS, "
        "ALLOWED_ORIGINS, LOG_LEVEL; see README.",
    ).parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    refusal = open_bind_refusal(settings)
    if refusal is not None:
        sys.exit(f"error: {refusal}")
    uvicorn.run(
        "web.app:app",
        host=settings.web_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
        **UVICORN_WS,
    )


if __name__ == "__main__":
    main()
