"""The REST endpoints, one module per resource."""

from __future__ import annotations

from web.declare import Endpoint
from web.routes import customers, docs, health, metrics, monitor, reports, routers, session, traffic


def endpoints() -> list[Endpoint]:
    """Every REST endpoint, /openapi.json (which describes them all) last."""
    rest = [
        *monitor.ENDPOINTS,
        *customers.ENDPOINTS,
        *traffic.ENDPOINTS,
        *reports.ENDPOINTS,
        *routers.ENDPOINTS,
        *health.ENDPOINTS,
        *session.ENDPOINTS,
        *metrics.ENDPOINTS,
    ]
    return [*rest, docs.endpoint(rest)]
