"""Session reports into PostgreSQL, in the transaction that closes their session.

A session's row and its report are written together (tasks.sessions.close's
`on_close`): a close that PostgreSQL refused is retried with its report by the state
writer, and a report is never written for a session that is still open. A session
that never ran (no attempt started) gets no report.

- The monitor closes its own session with the report it computed while it ran.
- Whoever closes a session whose monitor is gone (the reconciler after a kill -9, a
  stop of a session whose next attempt was still queued) rebuilds the report from the
  session's entries still in its customer's stream: `partial` when some had expired.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import redis
from sqlalchemy.orm import Session

from models import Customer, MonitorSession
from models import SessionReport as ReportRow
from settings import Settings
from tasks import sessions
from tasks.message import CustomerMeta
from tasks.report import SessionReport, flatten, new_report, report_from_stream
from tasks.sessions import Closed

log = logging.getLogger(__name__)


def save(s: Session, report: SessionReport, closed: Closed) -> None:
    """Write the report of a session just closed (in `s`, the closing transaction)."""
    if closed.started_at is None:
        return  # never ran: nothing was measured
    if report.identity.get("username") is None:
        # Not one entry of the session was seen: name it as the database does.
        customer = s.get(Customer, closed.customer_id)
        if customer is not None:
            report.describe({"username": customer.username, "customer_name": customer.name})
    data = flatten(report.finish(closed.stopped_at, closed.stop_reason, started_at=closed.started_at))
    # The row's own clock values, not their RFC 3339 text; its customer, whatever the entries said.
    data.update(
        session_id=closed.session_id,
        customer_id=closed.customer_id,
        started_at=closed.started_at,
        ended_at=closed.stopped_at,
    )
    s.add(ReportRow(**data))


def close_with_report(
    session_id: object, reason: str, report: SessionReport, attempt: int | None = None
) -> str | None:
    """tasks.sessions.close, writing `report` with the row."""
    return sessions.close(session_id, reason, attempt=attempt, on_close=lambda s, c: save(s, report, c))


def close_from_stream(
    client: redis.Redis,
    row: MonitorSession,
    reason: str,
    attempt: int | None = None,
    settings: Settings | None = None,
) -> str | None:
    """Close a session whose monitor is gone; its report from the retained stream."""
    report = None
    if row.started_at is not None:
        report = stream_report(client, row.customer_id, row.id, settings)
        report.describe({"router": row.router_id})
    if report is None:
        return sessions.close(row.id, reason, attempt=attempt)
    return close_with_report(row.id, reason, report, attempt=attempt)


def stream_report(
    client: redis.Redis, customer_id: object, session_id: object, settings: Settings | None = None
) -> SessionReport:
    """report_from_stream; when Redis cannot be read, an empty report marked partial."""
    try:
        return report_from_stream(client, customer_id, session_id, settings)
    except redis.RedisError as exc:
        log.warning("session %s: its stream cannot be read (%s); the report is partial", session_id, exc)
        report = new_report(session_id, settings)
        report.partial = True
        return report


def for_attempt(
    client: redis.Redis,
    meta: CustomerMeta,
    session_id: object,
    attempt: int,
    settings: Settings | None = None,
) -> SessionReport:
    """The report a monitor attempt continues: empty for the first, else what the
    earlier attempts left in the stream."""
    if attempt <= 1:
        report = new_report(session_id, settings)
    else:
        report = stream_report(client, meta.customer_id, session_id, settings)
    report.describe(asdict(meta))
    return report
