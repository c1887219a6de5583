"""The closed vocabularies of the data layer, stored as their string values."""

from __future__ import annotations

from enum import StrEnum

from settings import TlsMode

__all__ = [
    "ActualState",
    "AlertEventType",
    "AlertKind",
    "AlertState",
    "CustomerStatus",
    "DeliveryState",
    "DesiredState",
    "ServiceType",
    "TlsMode",
    "WebhookFormat",
    "enum_values",
]


class ServiceType(StrEnum):
    PPPOE = "pppoe"
    HOTSPOT = "hotspot"
    STATIC_IP = "static_ip"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"
    PENDING = "pending"


class DesiredState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class ActualState(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    STOPPING = "stopping"
    STOPPED = "stopped"


def enum_values(enum_cls: type[StrEnum]) -> list[str]:
    """Values, not member names, are what the database holds (the seed's 'static_ip')."""
    return [member.value for member in enum_cls]


# -- alerts (revision 0007) ---------------------------------------------------------------------


class AlertKind(StrEnum):
    """What an alert rule watches (README, Alerts); each kind has its own parameters."""

    UTILIZATION = "utilization"
    SESSION_FLAPS = "session_flaps"
    ROUTER_TOTAL = "router_total"
    WATCH_OFFLINE = "watch_offline"
    RTT = "rtt"


class WebhookFormat(StrEnum):
    GENERIC = "generic"
    ALERTMANAGER = "alertmanager"


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted: claimed_until)
    DELIVERED = "delivered"
    DEAD = "dead"  # ALERT_DELIVERY_MAX_AGE passed without a 2xx: retried only by hand


class AlertEventType(StrEnum):
    FIRING = "alert_firing"
    RESOLVED = "alert_resolved"
    ACKNOWLEDGED = "alert_acknowledged"


class AlertState(StrEnum):
    """An alert's state (revision 0008): open while firing, closed once resolved."""

    FIRING = "firing"
    RESOLVED = "resolved"
