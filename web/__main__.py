"""`python -m web`: serve web.app:app on WEB_HOST and WEB_PORT (else the seed's WS_PORT, 8081)."""

from __future__ import annotations

import argparse

import uvicorn

from settings import get_settings

# The WebSocket implementation and its keepalive: wsproto marks a refused handshake
# (401/403 before accept) as complete, where websockets-sansio logs a spurious ERROR for
# every refusal (uvicorn PR #3138); protocol pings find dashboards whose network vanished.
# No permessage-deflate: compressing every 700-byte frame for every client costs CPU
# and per-connection memory (uvicorn #1862) for little gain on a LAN.
UVICORN_WS = {
    "ws": "wsproto",
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "ws_per_message_deflate": False,
}


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog="python -m web",
        description="Serve the dashboard, the REST API and the /ws live feed (uvicorn, one process).",
        epilog="Settings come from the environment, then .env: WEB_HOST (default 127.0.0.1), "
        "WEB_PORT (else WS_PORT, default 8081), API_TOKEN, ALLOWED_ORIGINS, LOG_LEVEL; see README.",
    ).parse_args(argv)
    settings = get_settings()
    uvicorn.run(
        "web.app:app",
        host=settings.web_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
        **UVICORN_WS,  # type: ignore[arg-type]  # uvicorn.run's keywords are typed one by one
    )


if __name__ == "__main__":
    main()
