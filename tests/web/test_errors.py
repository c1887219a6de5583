"""web.errors: one table maps every service/data-layer error to one status and code."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import exc as sa_exc
from starlette.testclient import TestClient

from harness.pg import migrated_schema
from harness.redis_server import PrivateRedis
from models import Customer
from models.errors import DuplicateCustomerError, DuplicateNameError, InvalidFieldError
from models.resolution import (
    CustomerNotActive,
    CustomerNotFound,
    InvalidCustomerId,
    MissingUsername,
    ResolutionError,
)
from routeros import LoginError, UnreachableError
from settings import load_settings
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
from tests.services import TEST_REDIS_URL
from tests.web.local import LOCAL_URL
from tests.web.responses import assert_error
from tests.web.webdb import WebDb
from web.app import create_app
from web.errors import (
    ERRORS,
    ApiError,
    AuthDisabled,
    ForeignOrigin,
    TooManyAttempts,
    WrongToken,
    response_for,
)
from web.queries.alerts import AlertRuleNotFound, WebhookNotFound
from web.queries.reports import ReportNotFound, SessionNotFound
from web.queries.router_view import RouterNotFound

CID = uuid.UUID("0b9e2a8e-33c5-4b5e-9d1e-6f5b6c1d2e3f")


def _customer(status: str = "suspended") -> Customer:
    return Customer(
        id=CID, mikrotik_id="r1", username="budi", name="Budi", service_type="pppoe", status=status
    )


# Each class of the table with the answer the product promises for it.
CASES: list[tuple[BaseException, int, str]] = [
    (ApiError(418, "teapot", "short and stout"), 418, "teapot"),
    (InvalidCustomerId("nope"), 400, "invalid_customer_id"),
    (CustomerNotFound(CID), 404, "customer_not_found"),
    (RouterNotFound("edge-9"), 404, "router_not_found"),
    (SessionNotFound(CID), 404, "session_not_found"),
    (ReportNotFound(CID), 404, "report_not_found"),
    (CustomerNotActive(_customer()), 409, "customer_not_active"),
    (ResolutionError("no way to watch it"), 422, "customer_not_monitorable"),
    (MissingUsername(_customer("active"), "pppoe_username"), 422, "customer_not_monitorable"),
    (CapacityExceeded("global", 50, 50, 30), 429, "capacity_exceeded"),
    (NotMonitored(CID), 404, "not_monitored"),
    (MonitoringDisabled(), 503, "monitoring_disabled"),
    (StartFailed("could not start the monitor: OperationalError"), 503, "start_failed"),
    (StorageFull("redis is out of memory", 30), 503, "storage_full"),
    (DatabaseUnavailable("database unavailable"), 503, "database_unavailable"),
    (AlreadyMonitored(str(CID), f"{uuid.uuid4()}:1"), 409, "already_monitored"),
    (InvalidFieldError("hotspot_mac_address", "zz", "not a MAC address"), 422, "invalid_field"),
    (DuplicateCustomerError("username", "budi", "r1"), 409, "duplicate_customer"),
    (sa_exc.OperationalError("SELECT 1", {}, Exception("server closed")), 503, "database_unavailable"),
    (
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        503,
        "database_unavailable",
    ),
    (sa_exc.TimeoutError("QueuePool limit reached"), 503, "database_unavailable"),
    (redis.ConnectionError("Error 111 connecting"), 503, "redis_unavailable"),
    (redis.TimeoutError("Timeout reading from socket"), 503, "redis_unavailable"),
    (BrokerError("Error 111 connecting"), 503, "broker_unavailable"),
    (WrongToken(), 401, "unauthorized"),
    (AuthDisabled(), 409, "auth_disabled"),
    (TooManyAttempts(7), 429, "too_many_attempts"),
    (ForeignOrigin("https://evil.example", "POST"), 403, "forbidden_origin"),
    (InvalidPingCount(21), 400, "invalid_parameter"),
    (CustomerOffline(CID, "budi", "no PPPoE session for 'budi'"), 409, "customer_offline"),
    (RouterUnreachable("r1", UnreachableError("r1: connection refused")), 503, "router_unreachable"),
    (RouterFailed("r1", LoginError("invalid user name or password (6)")), 502, "router_error"),
    (DuplicateNameError("webhook", "chat"), 409, "duplicate_name"),
    (AlertRuleNotFound(7), 404, "alert_rule_not_found"),
    (AlertNotFound(uuid.UUID(int=7)), 404, "alert_not_found"),
    (WebhookNotFound(7), 404, "webhook_not_found"),
    (DeliveryNotFound(str(CID)), 404, "delivery_not_found"),
    (DeliveryNotDead(str(CID), "delivered"), 409, "delivery_not_dead"),
]


def test_errors_table_covers_exactly_the_promised_classes() -> None:
    assert {type(exc) for exc, _, _ in CASES} - {MissingUsername} == set(ERRORS)


@pytest.mark.parametrize(("exc", "status", "code"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_errors_each_class_answers_its_status_and_code(exc: BaseException, status: int, code: str) -> None:
    response = response_for(exc)
    body = json.loads(bytes(response.body))
    assert response.status_code == status
    assert (body["status"], body["code"]) == ("error", code)
    assert body["message"]


def test_errors_not_active_names_the_status() -> None:
    body = json.loads(bytes(response_for(CustomerNotActive(_customer())).body))
    assert "suspended" in body["message"] and body["customer_status"] == "suspended"


def test_errors_not_monitored_says_so() -> None:
    body = json.loads(bytes(response_for(NotMonitored(CID)).body))
    assert body["message"] == f"customer {CID} is not monitored"


def test_errors_capacity_carries_cap_and_retry_after() -> None:
    response = response_for(CapacityExceeded("global", 50, 50, 30))
    body = json.loads(bytes(response.body))
    assert response.headers["retry-after"] == "30"
    assert (body["scope"], body["cap"], body["in_use"], body["retry_after"]) == ("global", 50, 50, 30)
    assert "router_id" not in body


def test_errors_capacity_names_the_router_when_its_cap_refused() -> None:
    exc = CapacityExceeded("router", 2, 2, 30, router_id="r1", router_name="core-1")
    body = json.loads(bytes(response_for(exc).body))
    assert (body["scope"], body["router_id"], body["router_name"]) == ("router", "r1", "core-1")
    assert "on router 'core-1' (r1): 2 of 2 slots in use" in body["message"]


def test_errors_storage_full_says_when_to_retry() -> None:
    response = response_for(StorageFull("redis is out of memory", 30))
    body = json.loads(bytes(response.body))
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert body["retry_after"] == 30 and "out of memory" in body["message"]


def test_errors_data_errors_name_the_field_never_a_password() -> None:
    body = json.loads(bytes(response_for(InvalidFieldError("pppoe_password", "s3cret!", "too long")).body))
    assert body["field"] == "pppoe_password" and "s3cret!" not in json.dumps(body)
    body = json.loads(bytes(response_for(DuplicateCustomerError("username", "budi", "r1")).body))
    assert body["field"] == "username" and "budi" in body["message"]


def test_errors_infrastructure_messages_say_which_dependency_only() -> None:
    body = json.loads(
        bytes(response_for(sa_exc.OperationalError("SELECT x", {}, Exception("host db1"))).body)
    )
    assert body["message"] == "database unavailable" and "db1" not in json.dumps(body)
    body = json.loads(bytes(response_for(redis.ConnectionError("Error 111 connecting to 10.1.1.1")).body))
    assert body["message"] == "redis unavailable" and "10.1.1.1" not in json.dumps(body)


def test_errors_unknown_exception_is_not_swallowed_by_the_table() -> None:
    with pytest.raises(KeyError):
        response_for(KeyError("bug"))


# -- through the app ---------------------------------------------------------------------------


def test_errors_unknown_route_is_json_404(client: TestClient) -> None:
    body = assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert "/api/nothing-here" in body["message"]


def test_errors_wrong_method_is_json_405_with_allow(client: TestClient) -> None:
    response = client.get("/api/monitor/start")
    body = assert_error(response, 405, "method_not_allowed")
    assert "GET" in body["message"] and response.headers["allow"] == "POST"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_errors_database_down_is_503_naming_it(web_db: WebDb) -> None:
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{_closed_port()}/test"
    settings = load_settings({"DATABASE_URL": url, "REDIS_URL": TEST_REDIS_URL, "ENV_FILE": "/nonexistent"})
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        body = assert_error(client.get("/api/customers"), 503, "database_unavailable")
    assert body["message"] == "database unavailable"


def test_errors_redis_down_is_503_naming_it(web_db: WebDb) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings = load_settings({"DATABASE_URL": web_db.url, "REDIS_URL": url, "ENV_FILE": "/nonexistent"})
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        body = assert_error(
            client.get(f"/api/customers/{web_db.id('alice')}/traffic"), 503, "redis_unavailable"
        )
    assert body["message"] == "redis unavailable"


@pytest.fixture
def frozen_redis(tmp_path: Path) -> Iterator[str]:
    """A real redis-server, SIGSTOPped: connections are accepted, nothing is answered."""
    server = PrivateRedis(tmp_path).start()
    server.pause()
    try:
        yield server.url
    finally:
        server.stop()


def test_errors_redis_that_never_answers_is_503_not_a_hang(web_db: WebDb, frozen_redis: str) -> None:
    settings = load_settings(
        {"DATABASE_URL": web_db.url, "REDIS_URL": frozen_redis, "ENV_FILE": "/nonexistent"}
    )
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        assert_error(client.get(f"/api/customers/{web_db.id('alice')}/traffic"), 503, "redis_unavailable")


def test_errors_bug_is_500_without_details_and_logged(
    web_db: WebDb, caplog: pytest.LogCaptureFixture
) -> None:
    # A schema without tables: the query fails with ProgrammingError, which no table
    # entry covers, i.e. a bug.
    with migrated_schema(prefix="web_empty", migrate=False) as url:
        settings = load_settings(
            {"DATABASE_URL": url, "REDIS_URL": TEST_REDIS_URL, "ENV_FILE": "/nonexistent"}
        )
        with caplog.at_level(logging.ERROR, logger="web.errors"):
            with TestClient(
                create_app(settings), base_url=LOCAL_URL, raise_server_exceptions=False
            ) as client:
                response = client.get("/api/customers")
    body = assert_error(response, 500, "internal_error")
    assert body == {"status": "error", "message": "internal server error", "code": "internal_error"}
    assert "ProgrammingError" in caplog.text and "Traceback" in caplog.text
