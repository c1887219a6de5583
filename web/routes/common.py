"""Pieces several route modules share."""

from __future__ import annotations

import uuid
from typing import Literal

import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import exc as sa_exc
from starlette.requests import HTTPConnection

from web.declare import Param
from web.schemas import UUID

# Whatever touches the database or Redis may answer these.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
BROKER_ERRORS: tuple[type[BaseException], ...] = (BrokerError,)


def customer_id_param(where: Literal["query", "path"]) -> Param:
    return Param(
        "customer_id",
        where,
        UUID,
        "the customer's id (customers.id)",
        required=True,
        convert=uuid.UUID,
    )


REQUESTED_BY_MAX = 200


def requested_by(conn: HTTPConnection) -> str:
    """Who asks, as monitor_sessions.requested_by records it.

    The authenticated user once an authentication middleware sets scope["user"]
    (Starlette's convention), else "api"."""
    user = conn.scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        # The column holds 255 characters, and a reason may be appended to it.
        return str(user.display_name)[:REQUESTED_BY_MAX]
    return "api"


def page_params(max_limit: int, default_limit: int = 50, skipped: str = "rows") -> tuple[Param, Param]:
    """`limit` and `offset` of a paged list (offset capped so a query stays cheap)."""
    return (
        Param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
            "page size",
        ),
        Param(
            "offset",
            "query",
            {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0},
            f"{skipped} to skip",
        ),
    )
