"""Ended monitor sessions with reports, made the way the engine makes them: a session row
started and closed by tasks.sessions, its report (fed with message entries) written in
the closing transaction (tasks.session_reports)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from models import ActualState, MonitorSession
from tasks import session_reports, sessions
from tasks.report import new_report


def open_session(customer_id: str, router_id: str = "r1") -> str:
    """A session row whose first attempt started (desired running); its id."""
    session_id = uuid.uuid4()
    with sessions.db() as s:
        s.add(
            MonitorSession(id=session_id, customer_id=uuid.UUID(customer_id), router_id=router_id, attempt=1)
        )
    assert sessions.set_state(session_id, 1, ActualState.RUNNING, started=True)
    return str(session_id)


def ended_session(customer_id: str, entries: Iterable[dict[str, str]], reason: str = "stopped by api") -> str:
    """A session that ran, observed `entries` and was closed with its report; its id."""
    session_id = open_session(customer_id)
    report = new_report(session_id)
    for entry in entries:
        report.observe(entry)
    assert session_reports.close_with_report(session_id, reason, report, attempt=1) == reason
    return session_id
