"""Every error the web layer answers, as one table: exception class -> status and code.

Handled errors become `{"status": "error", "code": ..., "message": ...}` responses;
anything not in the table is a bug and bubbles up to the 500 handler, which answers
without the traceback and logs it. The table is looked up along the exception's MRO,
so the most specific entry wins (CustomerNotFound before ResolutionError).

Messages come from the data and service layers, whose errors never carry secrets;
infrastructure errors (database, Redis) get a fixed message because driver texts
name hosts and statements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models.errors import DuplicateCustomerError, DuplicateNameError, InvalidFieldError
from models.resolution import CustomerNotActive, CustomerNotFound, InvalidCustomerId, ResolutionError
from tasks.alert_delivery import DeliveryNotDead, DeliveryNotFound
from tasks.alerts import AlertNotFound
from tasks.semaphore import AlreadyMonitored
from tasks.service.errors import (
    CapacityExceeded,
    DatabaseUnavailable,
    MonitoringDisabled,
    NotMonitored,
    StartFailed,
    StorageFull,
)
from tasks.service.ping import CustomerOffline, InvalidPingCount, RouterFailed, RouterUnreachable
from web.queries.alerts import AlertRuleNotFound, WebhookNotFound
from web.queries.reports import ReportNotFound, SessionNotFound
from web.queries.router_view import RouterNotFound

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal decided by the web layer itself (malformed parameter, body too large...)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


class WrongToken(Exception):
    """A login with a token that is not API_TOKEN."""


class AuthDisabled(Exception):
    """A login while API_TOKEN is not set."""


class TooManyAttempts(Exception):
    """Too many wrong tokens from one address (web.throttle)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many wrong tokens from this address: try again in {retry_after} s")
        self.retry_after = retry_after


class ForeignOrigin(Exception):
    """A state-changing request from a page of another origin (CSRF)."""

    def __init__(self, origin: str, method: str) -> None:
        super().__init__(f"origin {origin[:100]!r} may not send {method} requests here (ALLOWED_ORIGINS)")


@dataclass(frozen=True)
class ErrorKind:
    """How one exception class is answered."""

    status: int
    code: str
    summary: str  # for the OpenAPI descriptions
    message: Callable[[Any], str] = str
    extra: Callable[[Any], dict[str, Any]] = field(default=lambda exc: {})
    headers: Callable[[Any], dict[str, str]] = field(default=lambda exc: {})
    log_level: int | None = None  # infrastructure trouble is worth a log line


def _capacity_extra(exc: CapacityExceeded) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "scope": exc.scope,
        "cap": exc.cap,
        "in_use": exc.in_use,
        "retry_after": exc.retry_after,
    }
    if exc.router_id is not None:  # the router's own cap refused: say which router
        extra["router_id"] = exc.router_id
        extra["router_name"] = exc.router_name
    return extra


_DATABASE = ErrorKind(
    503,
    "database_unavailable",
    "the database cannot be reached or is too slow",
    message=lambda exc: "database unavailable",
    log_level=logging.WARNING,
)
_REDIS = ErrorKind(
    503,
    "redis_unavailable",
    "Redis cannot be reached or is too slow",
    message=lambda exc: "redis unavailable",
    log_level=logging.WARNING,
)

ERRORS: Mapping[type[BaseException], ErrorKind] = {
    ApiError: ErrorKind(0, "", "refused by the web layer"),  # status and code come from the error
    InvalidCustomerId: ErrorKind(400, "invalid_customer_id", "the customer id is not a UUID"),
    CustomerNotFound: ErrorKind(404, "customer_not_found", "no customer with this id"),
    RouterNotFound: ErrorKind(
        404,
        "router_not_found",
        "no routers row and no customer with this router id",
        extra=lambda exc: {"router_id": exc.router_id},
    ),
    SessionNotFound: ErrorKind(404, "session_not_found", "no monitor session with this id"),
    ReportNotFound: ErrorKind(
        404, "report_not_found", "the session has no report: it is still running, or it never ran"
    ),
    CustomerNotActive: ErrorKind(
        409,
        "customer_not_active",
        "the customer's status is not active",
        extra=lambda exc: {"customer_status": exc.status},
    ),
    ResolutionError: ErrorKind(
        422, "customer_not_monitorable", "the customer has no resolvable router or interface"
    ),
    CapacityExceeded: ErrorKind(
        429,
        "capacity_exceeded",
        "every monitor slot (global or the router's) is in use",
        extra=_capacity_extra,
        headers=lambda exc: {"Retry-After": str(int(exc.retry_after))},
    ),
    NotMonitored: ErrorKind(
        404,
        "not_monitored",
        "the customer is not monitored",
        message=lambda exc: f"customer {exc.customer_id} is not monitored",
    ),
    InvalidPingCount: ErrorKind(
        400,
        "invalid_parameter",
        "a ping count outside 1..20",
        extra=lambda exc: {"parameter": exc.parameter},
    ),
    CustomerOffline: ErrorKind(
        409,
        "customer_offline",
        "the customer holds no address now (no PPPoE or hotspot session)",
        extra=lambda exc: {"customer_id": exc.customer_id},
    ),
    RouterUnreachable: ErrorKind(
        503,
        "router_unreachable",
        "the customer's router did not answer",
        extra=lambda exc: {"router_id": exc.router_id},
        log_level=logging.WARNING,
    ),
    RouterFailed: ErrorKind(
        502,
        "router_error",
        "the customer's router refused the login or the command",
        extra=lambda exc: {"router_id": exc.router_id},
        log_level=logging.WARNING,
    ),
    MonitoringDisabled: ErrorKind(503, "monitoring_disabled", "ENABLE_TRAFFIC_MONITOR is false"),
    StartFailed: ErrorKind(
        503, "start_failed", "the monitor could not be enqueued", log_level=logging.WARNING
    ),
    StorageFull: ErrorKind(
        503,
        "storage_full",
        "Redis is out of memory: no monitor can start until memory is freed",
        extra=lambda exc: {"retry_after": exc.retry_after},
        headers=lambda exc: {"Retry-After": str(int(exc.retry_after))},
        log_level=logging.WARNING,
    ),
    DatabaseUnavailable: _DATABASE,  # the service's own deadline passed (tasks.service)
    AlreadyMonitored: ErrorKind(409, "already_monitored", "another live monitor owns the customer"),
    InvalidFieldError: ErrorKind(
        422, "invalid_field", "a field value the data layer refuses", extra=lambda exc: {"field": exc.field}
    ),
    DuplicateCustomerError: ErrorKind(
        409,
        "duplicate_customer",
        "another customer on the router has this username",
        extra=lambda exc: {"field": exc.field},
    ),
    DuplicateNameError: ErrorKind(
        409, "duplicate_name", "another rule or webhook has this name", extra=lambda exc: {"field": exc.field}
    ),
    AlertRuleNotFound: ErrorKind(404, "alert_rule_not_found", "no alert rule with this id"),
    AlertNotFound: ErrorKind(404, "alert_not_found", "no alert with this id"),
    WebhookNotFound: ErrorKind(404, "webhook_not_found", "no webhook with this id"),
    DeliveryNotFound: ErrorKind(404, "delivery_not_found", "no webhook delivery with this id"),
    DeliveryNotDead: ErrorKind(
        409,
        "delivery_not_dead",
        "only a dead delivery can be retried by hand",
        extra=lambda exc: {"delivery_state": exc.state},
    ),
    WrongToken: ErrorKind(
        401, "unauthorized", "the token is not API_TOKEN", message=lambda exc: "wrong token"
    ),
    TooManyAttempts: ErrorKind(
        429,
        "too_many_attempts",
        "too many wrong tokens from this address (AUTH_MAX_FAILURES in AUTH_FAILURE_WINDOW)",
        extra=lambda exc: {"retry_after": exc.retry_after},
        headers=lambda exc: {"Retry-After": str(exc.retry_after)},
    ),
    ForeignOrigin: ErrorKind(403, "forbidden_origin", "a state-changing request from a foreign origin"),
    AuthDisabled: ErrorKind(
        409,
        "auth_disabled",
        "API_TOKEN is not set: there is nothing to log in to",
        message=lambda exc: "API_TOKEN is not set: there is nothing to log in to",
    ),
    sa_exc.OperationalError: _DATABASE,
    sa_exc.InterfaceError: _DATABASE,
    sa_exc.TimeoutError: _DATABASE,  # no free connection in the pool
    redis.ConnectionError: _REDIS,
    redis.TimeoutError: _REDIS,
    BrokerError: ErrorKind(
        503,
        "broker_unavailable",
        "the Celery broker cannot be reached",
        message=lambda exc: "message broker unavailable",
        log_level=logging.WARNING,
    ),
}


def kind_of(exc: BaseException) -> ErrorKind | None:
    for cls in type(exc).__mro__:
        kind = ERRORS.get(cls)
        if kind is not None:
            return kind
    return None


def error_json(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    body = {"status": "error", "message": message, "code": code, **extra}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def response_for(exc: BaseException) -> Response:
    """The table's answer for `exc`; raises it again when the table does not know it."""
    kind = kind_of(exc)
    if kind is None:
        raise exc
    if isinstance(exc, ApiError):
        return error_json(exc.status, exc.code, exc.message, **exc.extra)
    if kind.log_level is not None:
        # Class and first line only: enough to act on, and driver texts carry no passwords.
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        log.log(kind.log_level, "%s: %s %s", kind.code, type(exc).__name__, first)
    return error_json(kind.status, kind.code, kind.message(exc), kind.headers(exc), **kind.extra(exc))


async def handle_error(request: Request, exc: Exception) -> Response:
    return response_for(exc)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def handle_http(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route, wrong method) in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no route {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = exc.detail
    return error_json(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), message, exc.headers)


async def handle_crash(request: Request, exc: Exception) -> Response:
    """The 500: no traceback or message in the answer; the traceback goes to the log."""
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return error_json(500, "internal_error", "internal server error")


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Any]]:
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {cls: handle_error for cls in ERRORS}
    handlers[HTTPException] = handle_http
    handlers[Exception] = handle_crash
    return handlers
