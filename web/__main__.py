"""`python -m web`: serve web.app:app on WEB_HOST and WEB_PORT (else the seed's WS_PORT, 8081)."""

from __future__ import annotations

import uvicorn

from settings import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "web.app:app",
        host=settings.web_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
