"""The closed vocabularies of the data layer, stored as their string values."""

from __future__ import annotations

from enum import StrEnum

from settings import TlsMode

__all__ = ["ActualState", "CustomerStatus", "DesiredState", "ServiceType", "TlsMode", "enum_values"]


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
