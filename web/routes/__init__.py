"""The REST endpoints, one module per resource."""

from __future__ import annotations

from web.declare import Endpoint
from web.routes import (
    alert_rules,
    alerts,
    customers,
    docs,
    health,
    metrics,
    monitor,
    ping,
    reports,
    routers,
    session,
    traffic,
    webhooks,
)


def endpoints() -> list[Endpoint]:
    """Every REST endpoint, /openapi.json (which describes them all) last."""
    rest = [
        *monitor.ENDPOINTS,
        *customers.ENDPOINTS,
        *traffic.ENDPOINTS,
        *ping.ENDPOINTS,
        *reports.ENDPOINTS,
        *routers.ENDPOINTS,
        *health.ENDPOINTS,
        *session.ENDPOINTS,
        *metrics.ENDPOINTS,
        *alert_rules.ENDPOINTS,
        *alerts.ENDPOINTS,
        *webhooks.ENDPOINTS,
    ]
    return [*rest, docs.endpoint(rest)]
