"""Session reports for the REST layer and the CLI (synchronous: run them in a thread).

A report is read from session_reports, where the session's close wrote it
(tasks/session_reports.py); its JSON is tasks/report.py's, and its CSV has one row per
report with the nested parts flattened (download_peak_bps, rtt_median_ms...), the
table's own column names.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import MonitorSession, SessionReport
from tasks.report import flatten, nest
from tasks.timestamps import rfc3339
from web.queries.customers import require_customer

DEFAULT_LIMIT = 20
MAX_LIMIT = 200
# The CSV's header: the table's columns in their order, which is the JSON's flattened.
CSV_COLUMNS = tuple(c.name for c in SessionReport.__table__.columns if c.name != "created_at")


class SessionNotFound(LookupError):
    """No monitor session with this id."""

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__(f"no monitor session {session_id}")
        self.session_id = session_id


class ReportNotFound(LookupError):
    """The session exists but has no report: it is still running, or it never ran."""

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__(f"session {session_id} has no report: it is still running, or it never ran")
        self.session_id = session_id


def flat_json(row: SessionReport) -> dict[str, Any]:
    """A report row as the CSV's columns, with JSON values (times as RFC 3339)."""
    flat: dict[str, Any] = {name: getattr(row, name) for name in CSV_COLUMNS}
    flat["session_id"], flat["customer_id"] = str(row.session_id), str(row.customer_id)
    flat["started_at"], flat["ended_at"] = _moment(row.started_at), _moment(row.ended_at)
    return flat


def _moment(moment: datetime) -> str:
    # SQLite hands back naive UTC; rfc3339 would take it for local time.
    return rfc3339(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def report_json(row: SessionReport) -> dict[str, Any]:
    """A report row as GET /api/sessions/{id} answers it."""
    return nest(flat_json(row))


def get_report(session: Session, session_id: uuid.UUID) -> dict[str, Any]:
    row = session.get(SessionReport, session_id)
    if row is not None:
        return report_json(row)
    if session.get(MonitorSession, session_id) is None:
        raise SessionNotFound(session_id)
    raise ReportNotFound(session_id)


def list_reports(
    session: Session, customer_id: uuid.UUID, *, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A customer's reports, newest first, and how many there are in all."""
    require_customer(session, customer_id)
    mine = SessionReport.customer_id == customer_id
    total = session.scalar(select(func.count()).select_from(SessionReport).where(mine)) or 0
    rows = session.scalars(
        select(SessionReport)
        .where(mine)
        .order_by(SessionReport.started_at.desc(), SessionReport.session_id)
        .limit(limit)
        .offset(offset)
    )
    return [report_json(row) for row in rows], total


def page_json(items: list[dict[str, Any]], total: int, *, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_text(reports: Iterable[dict[str, Any]]) -> str:
    """Reports (JSON, nested or flat) as CSV: a header row, then one row per report."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        flat = flatten(report) if "rtt" in report else report
        writer.writerow([_cell(flat[name]) for name in CSV_COLUMNS])
    return out.getvalue()
