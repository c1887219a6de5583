"""GET /api/customers/{id}/ping: a one-shot /ping from the customer's router (the
simulator), through the real service, database and app; every refusal as the error
table says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.seed import ROUTER_ID, ROUTER_PASSWORD
from tests.routeros.wire import WireClient, attrs
from tests.tasks.engine import Engine
from tests.web.local import LOCAL_URL
from tests.web.responses import assert_error
from web.app import create_app

UNROUTED = "192.0.2.77"  # TEST-NET-1: nobody on the simulated router holds it


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Engine:
    eng: Engine = engine_factory(pppoe=2, hotspot=1, static=2)
    return eng


@pytest.fixture(scope="module")
def app(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(), base_url=LOCAL_URL) as test_client:
        yield test_client


def session_address(engine: Engine, username: str) -> str:
    """The address the simulated router's PPPoE or hotspot session holds, read with a raw
    API client of the tests' own."""
    c = engine.customers[username]
    menu, key = (
        ("/ppp/active/print", "name")
        if c["service_type"] == "pppoe"
        else ("/ip/hotspot/active/print", "user")
    )
    with WireClient(engine.sim.host, engine.sim.port) as w:
        w.login(password=ROUTER_PASSWORD)
        return attrs(w.command(menu, f"?{key}={username}")[0])["address"]


def ping(app: TestClient, engine: Engine, username: str, count: int) -> dict[str, Any]:
    response = app.get(f"/api/customers/{engine.customer_id(username)}/ping?count={count}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("service_type", ["pppoe", "hotspot", "static_ip"])
def test_ping_answers_every_probe_from_the_customers_address(
    app: TestClient, engine: Engine, service_type: str
) -> None:
    username = engine.usernames(service_type)[0]
    body = ping(app, engine, username, 2)
    expected = engine.customers[username]["static_ip"] or session_address(engine, username)
    assert (body["customer_id"], body["username"], body["address"]) == (
        engine.customer_id(username),
        username,
        expected,
    )
    assert (body["count"], body["sent"], body["received"], body["loss_pct"]) == (2, 2, 2, 0.0)
    assert [r["seq"] for r in body["replies"]] == [0, 1]
    assert all(r["status"] is None and r["rtt_ms"] > 0 for r in body["replies"])
    rtts = [r["rtt_ms"] for r in body["replies"]]
    assert (body["min_ms"], body["max_ms"]) == (min(rtts), max(rtts))
    assert body["min_ms"] <= body["avg_ms"] <= body["max_ms"]
    assert ROUTER_PASSWORD not in str(body)


def test_ping_address_nobody_holds_reports_the_routers_status(app: TestClient, engine: Engine) -> None:
    username = engine.usernames("static_ip")[1]
    cid = engine.customer_id(username)
    assert app.patch(f"/api/customers/{cid}", json={"static_ip": UNROUTED}).status_code == 200
    body = ping(app, engine, username, 2)
    assert body["address"] == UNROUTED
    assert [(r["rtt_ms"], r["status"]) for r in body["replies"]] == [(None, "host unreachable")] * 2
    assert (body["received"], body["loss_pct"], body["min_ms"], body["avg_ms"]) == (0, 100.0, None, None)


def test_ping_pppoe_customer_without_a_session_is_offline_409(app: TestClient, engine: Engine) -> None:
    username = engine.usernames("pppoe")[1]
    engine.sim.drop_pppoe(username)
    try:
        response = app.get(f"/api/customers/{engine.customer_id(username)}/ping?count=1")
    finally:
        engine.sim.restore_pppoe(username)
    body = assert_error(response, 409, "customer_offline")
    assert body["customer_id"] == engine.customer_id(username) and username in body["message"]


def test_ping_hotspot_user_logged_out_is_offline_409(app: TestClient, engine: Engine) -> None:
    username = engine.usernames("hotspot")[0]
    engine.sim.drop_hotspot(username)
    try:
        response = app.get(f"/api/customers/{engine.customer_id(username)}/ping?count=1")
    finally:
        engine.sim.restore_hotspot(username)
    assert_error(response, 409, "customer_offline")


@pytest.mark.parametrize("count", ["0", "21", "-1", "two"])
def test_ping_count_out_of_range_is_400_naming_count(app: TestClient, engine: Engine, count: str) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    body = assert_error(app.get(f"/api/customers/{cid}/ping?count={count}"), 400, "invalid_parameter")
    assert body["parameter"] == "count"


def test_ping_unknown_or_malformed_customer_is_refused(app: TestClient) -> None:
    assert_error(app.get(f"/api/customers/{uuid.uuid4()}/ping"), 404, "customer_not_found")
    assert_error(app.get("/api/customers/not-a-uuid/ping"), 400, "invalid_parameter")


def test_ping_router_refusing_connections_is_503(app: TestClient, engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    engine.sim.refuse_connections(True)
    try:
        response = app.get(f"/api/customers/{cid}/ping?count=1")
    finally:
        engine.sim.refuse_connections(False)
    body = assert_error(response, 503, "router_unreachable")
    assert body["router_id"] == ROUTER_ID
    assert ROUTER_PASSWORD not in response.text


def test_ping_router_refusing_the_login_is_502(app: TestClient, engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    engine.sim.refuse_logins(True)
    try:
        response = app.get(f"/api/customers/{cid}/ping?count=1")
    finally:
        engine.sim.refuse_logins(False)
    assert_error(response, 502, "router_error")
    assert ROUTER_PASSWORD not in response.text


def test_ping_router_denying_ping_is_502(app: TestClient, engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("static_ip")[0])
    engine.sim.deny_commands("/ping")
    try:
        response = app.get(f"/api/customers/{cid}/ping?count=1")
    finally:
        engine.sim.deny_commands()
    body = assert_error(response, 502, "router_error")
    assert "not enough permissions" in body["message"]


def test_ping_uses_one_short_lived_router_session(app: TestClient, engine: Engine) -> None:
    engine.sim.reset_command_counts()
    ping(app, engine, engine.usernames("pppoe")[0], 1)
    counts = engine.sim.command_counts()
    assert counts.get("/ping") == 1 and counts.get("/ppp/active/print") == 1
    assert engine.sim.stats()["ping_streams"] == 0
