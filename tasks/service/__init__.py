"""What the web layer and the CLI call: start, stop and status of monitors (no HTTP here).

- errors.py: every refusal, a typed error (web/errors.py maps each to one HTTP status);
- info.py: SessionInfo, what start and stop answer;
- starting.py: start() of one monitor, and what the bulk start shares with it (the
  session row, the reservation, the one mapping of refusals to errors);
- bulk.py: start_many(), many monitors in a few round trips;
- stopping.py: stop(), with PostgreSQL or through Redis alone;
- reporting.py: status(), what should run and what does;
- ping.py: ping(), a one-shot `/ping` from the customer's router to its address.
"""

from __future__ import annotations

from tasks.service.bulk import MAX_BULK_START, StartResult, start_many
from tasks.service.errors import (
    DATABASE_ERRORS,
    CapacityExceeded,
    DatabaseUnavailable,
    MonitoringDisabled,
    NotMonitored,
    StartFailed,
    StorageFull,
)
from tasks.service.info import SessionInfo
from tasks.service.ping import (
    MAX_PING_COUNT,
    CustomerOffline,
    InvalidPingCount,
    RouterFailed,
    RouterUnreachable,
    ping,
)
from tasks.service.reporting import status
from tasks.service.starting import start
from tasks.service.stopping import stop

__all__ = [
    "DATABASE_ERRORS",
    "MAX_BULK_START",
    "MAX_PING_COUNT",
    "CapacityExceeded",
    "CustomerOffline",
    "DatabaseUnavailable",
    "InvalidPingCount",
    "MonitoringDisabled",
    "NotMonitored",
    "RouterFailed",
    "RouterUnreachable",
    "SessionInfo",
    "StartFailed",
    "StartResult",
    "StorageFull",
    "ping",
    "start",
    "start_many",
    "status",
    "stop",
]
