"""The service's refusals: each is a typed error, and web/errors.py maps each to one
HTTP status (the CLI prints its message)."""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError


class MonitoringDisabled(RuntimeError):
    def __init__(self) -> None:
        super().__init__("traffic monitoring is disabled (ENABLE_TRAFFIC_MONITOR=false)")


class CapacityExceeded(RuntimeError):
    """No free monitor slot. `scope` is "global" or "router" (then `router_id` and
    `router_name` say which router's cap refused); `retry_after` is a hint (s)."""

    def __init__(
        self,
        scope: str,
        cap: int,
        in_use: int,
        retry_after: int,
        router_id: str | None = None,
        router_name: str | None = None,
    ) -> None:
        where = f" on router {router_name!r} ({router_id})" if scope == "router" else ""
        super().__init__(f"{scope} monitor limit reached{where}: {in_use} of {cap} slots in use")
        self.scope = scope
        self.cap = cap
        self.in_use = in_use
        self.retry_after = retry_after
        self.router_id = router_id if scope == "router" else None
        self.router_name = router_name if scope == "router" else None


class NotMonitored(LookupError):
    def __init__(self, customer_id: object) -> None:
        super().__init__(f"customer {customer_id} is not being monitored")
        self.customer_id = str(customer_id)


class StartFailed(RuntimeError):
    """Launching failed; the reservation was released and the session closed."""


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL did not answer (down, stalled past DB_STATEMENT_TIMEOUT, no pooled
    connection free in time): 503. Nothing was half-done."""


# What a database that is down or stalled raises through SQLAlchemy: a connection or
# statement that failed or timed out (models/pg_wait.py), or no pooled connection in time.
DATABASE_ERRORS = (OperationalError, InterfaceError, SQLAlchemyTimeoutError)


class StorageFull(RuntimeError):
    """Redis is out of memory (or within the reserve new monitors leave free): no monitor
    can start until memory is freed (503). Nothing was left behind; `retry_after` (s)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(f"cannot start a monitor: {detail}")
        self.retry_after = retry_after
