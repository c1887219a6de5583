"""A customer's retained samples and status events, for charts and exports.

They come from the customer's own stream (tasks.keys.customer_stream), which the
engine trims to CUSTOMER_STREAM_RETENTION seconds, so the cost is proportional
to that customer's entries only.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from common.text import as_text
from models.resolution import CustomerNotFound, InvalidCustomerId
from tasks.keys import customer_stream
from tasks.message import TRAFFIC, decode_entry
from web.declare import Call, Endpoint, Param, Reply
from web.queries.customers import require_customer
from web.routes.common import DATABASE_ERRORS, REDIS_ERRORS, customer_id_param
from web.state import AppState, app_state

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
CSV_CHUNK = 1000
CSV_COLUMNS = ("timestamp", "download_bps", "upload_bps", "download_utilization", "upload_utilization")

_STREAM_ID = re.compile(r"^([0-9]{1,19})-([0-9]{1,19})$")  # 19 digits: always below 2**64
# "After every entry of that millisecond": no millisecond holds 10**19 entries, and the
# id stays within the pattern above, so `next` can always be passed back as `since`.
_LAST_SEQ = 10**19 - 1


def parse_since(text: str) -> str:
    """A stream id, or an RFC 3339 time -> the stream id to read strictly after.

    A time t becomes the last possible id before t's millisecond, so entries at t are
    included; either way `next` in the answer is an id to pass back as `since`."""
    match = _STREAM_ID.match(text)
    if match:
        return f"{int(match[1])}-{int(match[2])}"
    try:
        moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case t and z
    except ValueError:
        raise ValueError("must be a stream id like 1764000000000-0 or an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 time needs its zone (Z or +hh:mm)")
    ms = int(moment.timestamp() * 1000)
    return "0-0" if ms <= 0 else f"{ms - 1}-{_LAST_SEQ}"


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


SINCE = Param(
    "since",
    "query",
    {
        "anyOf": [
            {"type": "string", "pattern": "^[0-9]{1,19}-[0-9]{1,19}$"},
            {"type": "string", "format": "date-time"},
        ],
        "description": "a stream id (1764000000000-0) or an RFC 3339 date-time",
    },
    "continue strictly after this stream id (an entry's `id`, or `next`), or from this RFC 3339 time",
    convert=parse_since,
)


async def _exists(state: AppState, customer_id: uuid.UUID) -> None:
    def check() -> None:
        with state.db() as session:
            require_customer(session, customer_id)

    await state.run(check)


async def customer_traffic(call: Call) -> Response:
    """Retained entries of one customer, oldest first, after `since`.

    `next` is the id to continue from. When `since` is older than the oldest
    retained entry, `gap` says which span is gone (trimmed after the retention),
    so a chart can draw a gap instead of a line."""
    state = app_state(call.request)
    customer_id: uuid.UUID = call.params["customer_id"]
    since: str | None = call.params["since"]
    limit: int = call.params["limit"]
    await _exists(state, customer_id)
    key = customer_stream(customer_id)
    async with state.redis.pipeline(transaction=False) as pipe:
        pipe.xrange(key, "-", "+", count=1)
        pipe.xrange(key, "-" if since is None else f"({since}", "+", count=limit + 1)
        first, rows = await pipe.execute()
    entries = [decode_entry(entry_id, fields) for entry_id, fields in rows[:limit]]
    gap = None
    if since is not None and first:
        oldest = as_text(first[0][0])
        if _id_key(oldest) > _id_key(since):
            gap = {"from": since, "to": oldest}
    body: dict[str, Any] = {
        "status": "ok",
        "customer_id": str(customer_id),
        "entries": entries,
        "next": entries[-1]["id"] if entries else since,
        "more": len(rows) > limit,
        "retention_seconds": state.settings.customer_stream_retention,
        "gap": gap,
    }
    return JSONResponse(body)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


async def customer_traffic_csv(call: Call) -> Response:
    """The retained traffic samples of one customer as a CSV download (status events left out)."""
    state = app_state(call.request)
    customer_id: uuid.UUID = call.params["customer_id"]
    since: str | None = call.params["since"]
    await _exists(state, customer_id)
    key = customer_stream(customer_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    cursor = "-" if since is None else f"({since}"
    while True:
        batch: list[Any] = await state.redis.xrange(key, cursor, "+", count=CSV_CHUNK) or []
        for entry_id, fields in batch:
            entry = decode_entry(entry_id, fields)
            if entry.get("type") == TRAFFIC:
                writer.writerow([_cell(entry.get(column)) for column in CSV_COLUMNS])
        if len(batch) < CSV_CHUNK:
            break
        cursor = f"({as_text(batch[-1][0])}"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="traffic-{customer_id}.csv"'},
    )


_ID = customer_id_param("path")
_RAISES: tuple[type[BaseException], ...] = (
    InvalidCustomerId,
    CustomerNotFound,
    *DATABASE_ERRORS,
    *REDIS_ERRORS,
)

ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/customers/{customer_id}/traffic",
        customer_traffic,
        "A customer's retained samples and status events",
        "traffic",
        (Reply(200, "entries after `since`, oldest first", "Traffic"),),
        params=(
            _ID,
            SINCE,
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                "at most this many entries; `more` says whether others follow",
            ),
        ),
        raises=_RAISES,
    ),
    Endpoint(
        "GET",
        "/api/customers/{customer_id}/traffic.csv",
        customer_traffic_csv,
        "A customer's retained traffic samples as CSV",
        "traffic",
        (
            Reply(
                200,
                "CSV: " + ",".join(CSV_COLUMNS),
                None,
                media_type="text/csv",
                headers={"Content-Disposition": {"type": "string"}},
            ),
        ),
        params=(_ID, SINCE),
        raises=_RAISES,
    ),
]
