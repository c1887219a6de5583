"""Session reports: a customer's past monitor sessions, and one session's report.

Written when a session ends (tasks/session_reports.py), so they outlive the stream's
retention. JSON by default; `?format=csv` gives the same reports as CSV, one row each.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from models.resolution import CustomerNotFound
from web.declare import Call, Endpoint, Param, Reply
from web.queries import reports as q
from web.routes.common import DATABASE_ERRORS, customer_id_param, page_params
from web.schemas import UUID
from web.state import app_state

FORMAT = Param(
    "format", "query", {"type": "string", "enum": ["json", "csv"], "default": "json"}, "json, or csv"
)
SESSION_ID = Param(
    "session_id",
    "path",
    UUID,
    "the monitor session's id (as start answered it)",
    required=True,
    convert=uuid.UUID,
)


def _csv(reports: list[dict[str, Any]], filename: str) -> Response:
    return Response(
        q.csv_text(reports),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def customer_sessions(call: Call) -> Response:
    """A customer's past monitor sessions, newest first, each with its report.

    A session appears once it has ended (stop, max duration, customer suspended,
    monitor crash finished by the reconciler); `total` counts all of them."""
    p = call.params
    state = app_state(call.request)
    customer_id: uuid.UUID = p["customer_id"]

    def read() -> tuple[list[dict[str, Any]], int]:
        with state.db() as session:
            return q.list_reports(session, customer_id, limit=p["limit"], offset=p["offset"])

    items, total = await state.run(read)
    if p["format"] == "csv":
        return _csv(items, f"sessions-{customer_id}.csv")
    return JSONResponse(q.page_json(items, total, limit=p["limit"], offset=p["offset"]))


async def session_report(call: Call) -> Response:
    """The report of one ended monitor session (404 `report_not_found` while it runs)."""
    state = app_state(call.request)
    session_id: uuid.UUID = call.params["session_id"]

    def read() -> dict[str, Any]:
        with state.db() as session:
            return q.get_report(session, session_id)

    report = await state.run(read)
    if call.params["format"] == "csv":
        return _csv([report], f"session-{session_id}.csv")
    return JSONResponse(report)


def _csv_reply(what: str) -> Reply:
    return Reply(
        200,
        f"with format=csv: {what} as CSV, a header row of flattened names",
        None,
        media_type="text/csv",
        headers={"Content-Disposition": {"type": "string"}},
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/customers/{customer_id}/sessions",
        customer_sessions,
        "A customer's past monitor sessions with their reports",
        "reports",
        (
            Reply(200, "one page of reports, newest first, and the total", "SessionReports"),
            _csv_reply("the page"),
        ),
        params=(
            customer_id_param("path"),
            *page_params(q.MAX_LIMIT, q.DEFAULT_LIMIT, skipped="reports"),
            FORMAT,
        ),
        raises=(CustomerNotFound, *DATABASE_ERRORS),
    ),
    Endpoint(
        "GET",
        "/api/sessions/{session_id}",
        session_report,
        "The report of one ended monitor session",
        "reports",
        (Reply(200, "the report", "SessionReport"), _csv_reply("the report")),
        params=(SESSION_ID, FORMAT),
        raises=(q.SessionNotFound, q.ReportNotFound, *DATABASE_ERRORS),
    ),
]
