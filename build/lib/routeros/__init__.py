"""RouterOS device layer: a multiplexed, supervised API client (and, in .simulator, a fake router)."""

from routeros.client import RouterClient
from routeros.connection import RouterEndpoint
from routeros.errors import (
    FatalError,
    LoginError,
    ProtocolError,
    RouterError,
    TrapError,
    UnreachableError,
)
from routeros.multiplexer import Stream, StreamEvent

__all__ = [
    "FatalError",
    "LoginError",
    "ProtocolError",
    "RouterClient",
    "RouterEndpoint",
    "RouterError",
    "Stream",
    "StreamEvent",
    "TrapError",
    "UnreachableError",
]
