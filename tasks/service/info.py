"""SessionInfo: what start and stop answer about a monitor session (its times as datetimes:
the caller writes them out, with tasks/timestamps.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from models import MonitorSession


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    customer_id: str
    router_id: str
    task_id: str | None
    attempt: int
    desired_state: str
    actual_state: str
    created: bool  # False when start() returned an existing session
    requested_by: str | None
    created_at: datetime | None
    started_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def session_info(row: MonitorSession, created: bool) -> SessionInfo:
    return SessionInfo(
        session_id=str(row.id),
        customer_id=str(row.customer_id),
        router_id=row.router_id,
        task_id=row.task_id,
        attempt=row.attempt,
        desired_state=str(row.desired_state),
        actual_state=str(row.actual_state),
        created=created,
        requested_by=row.requested_by,
        created_at=row.created_at,
        started_at=row.started_at,
    )
