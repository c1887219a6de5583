"""The seed's monitor routes through the real service functions (no monitors worker here:
a started session stays `starting`, which is all these tests need; tests/web/test_live.py
runs the whole engine)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from harness.seed import apply_env
from models import Router
from tasks import sessions
from tasks.keys import customer_stream, session_ping
from tasks.message import CustomerMeta, status_entry
from tests.tasks.engine import BASE_ENV
from tests.web.responses import assert_error
from tests.web.webdb import ROUTER_ID, WebDb

SEED_KEYS = {"status", "active_monitors", "monitor_count", "max_concurrent", "slots_available"}


@pytest.fixture
def stop_all(client: TestClient, web_db: WebDb) -> Iterator[None]:
    """Whatever a test started is stopped afterwards, so slots do not leak between tests."""
    yield
    for row in sessions.open_sessions():
        client.post(f"/api/monitor/stop?customer_id={row.customer_id}")


def test_monitor_start_answers_the_seed_shape_plus_session(
    client: TestClient, web_db: WebDb, stop_all: None
) -> None:
    cid = web_db.id("frank")
    response = client.post(f"/api/monitor/start?customer_id={cid}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["message"], body["customer_id"]) == ("success", "Monitoring started", cid)
    assert body["router"] == ROUTER_ID and body["state"] == "starting"
    assert body["task_id"] == f"monitor-{body['session_id']}-1"
    row = sessions.get(body["session_id"])
    assert row is not None and row.requested_by == "api"


def test_monitor_start_twice_is_idempotent(client: TestClient, web_db: WebDb, stop_all: None) -> None:
    cid = web_db.id("frank")
    first = client.post(f"/api/monitor/start?customer_id={cid}").json()
    second = client.post(f"/api/monitor/start?customer_id={cid}").json()
    assert second["message"] == "Already monitoring" and second["status"] == "success"
    assert second["session_id"] == first["session_id"]


def test_monitor_stop_then_stop_again_is_404(client: TestClient, web_db: WebDb) -> None:
    cid = web_db.id("grace")
    started = client.post(f"/api/monitor/start?customer_id={cid}").json()
    body = client.post(f"/api/monitor/stop?customer_id={cid}").json()
    assert body == {
        "status": "success",
        "message": "Monitoring stopped",
        "customer_id": cid,
        "session_id": started["session_id"],
        "state": "stopped",
    }
    again = assert_error(client.post(f"/api/monitor/stop?customer_id={cid}"), 404, "not_monitored")
    assert again["message"] == f"customer {cid} is not monitored"


def test_monitor_start_refusals(client: TestClient, web_db: WebDb) -> None:
    assert_error(client.post(f"/api/monitor/start?customer_id={uuid.uuid4()}"), 404, "customer_not_found")
    body = assert_error(
        client.post(f"/api/monitor/start?customer_id={web_db.id('dave')}"), 409, "customer_not_active"
    )
    assert "suspended" in body["message"] and body["customer_status"] == "suspended"
    body = assert_error(
        client.post(f"/api/monitor/start?customer_id={web_db.id('erin')}"), 422, "customer_not_monitorable"
    )
    assert "pppoe_username" in body["message"]
    assert sessions.open_sessions() == []  # nothing half-started


@pytest.fixture
def setting(web_db: WebDb) -> Iterator[Callable[..., None]]:
    """Change settings for one test (the service reads get_settings() at every call)."""
    changed: set[str] = set()

    def change(**values: str) -> None:
        changed.update(values)
        apply_env(values)

    yield change
    apply_env({name: BASE_ENV[name] for name in changed})


def test_monitor_global_cap_is_429_with_retry_after(
    client: TestClient, web_db: WebDb, stop_all: None, setting: Callable[..., None]
) -> None:
    setting(MAX_CONCURRENT_MONITORS="1")
    assert client.post(f"/api/monitor/start?customer_id={web_db.id('frank')}").status_code == 200
    response = client.post(f"/api/monitor/start?customer_id={web_db.id('grace')}")
    body = assert_error(response, 429, "capacity_exceeded")
    assert (body["scope"], body["cap"], body["in_use"]) == ("global", 1, 1)
    assert int(response.headers["retry-after"]) == body["retry_after"] >= 1


def test_monitor_router_cap_is_429_scoped_to_the_router(
    client: TestClient, web_db: WebDb, stop_all: None
) -> None:
    with sessions.db() as s:
        s.get(Router, ROUTER_ID).max_monitors = 1  # type: ignore[union-attr]
    try:
        assert client.post(f"/api/monitor/start?customer_id={web_db.id('frank')}").status_code == 200
        body = assert_error(
            client.post(f"/api/monitor/start?customer_id={web_db.id('grace')}"), 429, "capacity_exceeded"
        )
        assert (body["scope"], body["cap"]) == ("router", 1)
    finally:
        with sessions.db() as s:
            s.get(Router, ROUTER_ID).max_monitors = None  # type: ignore[union-attr]


def test_monitor_disabled_is_503(client: TestClient, web_db: WebDb, setting: Callable[..., None]) -> None:
    setting(ENABLE_TRAFFIC_MONITOR="false")
    body = assert_error(
        client.post(f"/api/monitor/start?customer_id={web_db.id('frank')}"), 503, "monitoring_disabled"
    )
    assert "ENABLE_TRAFFIC_MONITOR" in body["message"]


def test_monitor_status_has_the_seed_keys_and_per_monitor_details(
    client: TestClient, web_db: WebDb, stop_all: None
) -> None:
    idle = client.get("/api/monitor/status").json()
    assert set(idle) == SEED_KEYS | {"monitors"}
    assert (idle["status"], idle["active_monitors"], idle["monitor_count"], idle["monitors"]) == (
        "ok",
        [],
        0,
        [],
    )
    assert idle["max_concurrent"] == idle["slots_available"] == 50

    cid = web_db.id("frank")
    web_db.redis.delete(customer_stream(cid))  # earlier tests' events
    started = client.post(f"/api/monitor/start?customer_id={cid}").json()
    body = client.get("/api/monitor/status").json()
    assert body["active_monitors"] == [cid]  # its slot is held from the start
    assert (body["monitor_count"], body["slots_available"]) == (1, 49)
    [monitor] = body["monitors"]
    assert monitor["customer_id"] == cid and monitor["session_id"] == started["session_id"]
    assert (monitor["customer_name"], monitor["username"]) == ("Frank Example", "frank")
    assert (monitor["router"], monitor["interface"]) == (ROUTER_ID, "<pppoe-frank>")
    assert (monitor["state"], monitor["live"], monitor["last_sample_at"]) == ("starting", True, None)
    # Stored moments as ISO 8601 with their offset (tasks.timestamps.iso); not running yet.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", monitor["created_at"])
    assert monitor["started_at"] is None

    meta = CustomerMeta(cid, "Frank Example", "frank", "pppoe", "<pppoe-frank>", ROUTER_ID)
    entry = status_entry("started", meta, session_id=started["session_id"], seq=0, fence=None)
    web_db.redis.xadd(customer_stream(cid), entry)  # type: ignore[arg-type]
    [monitor] = client.get("/api/monitor/status").json()["monitors"]
    assert monitor["last_sample_at"] == entry["timestamp"]


def test_monitor_start_many_answers_each_customer_as_a_single_start_would(
    client: TestClient, web_db: WebDb, stop_all: None
) -> None:
    frank, grace = web_db.id("frank"), web_db.id("grace")
    before = client.post(f"/api/monitor/start?customer_id={frank}").json()
    missing = str(uuid.uuid4())
    ids = [frank, grace, missing, web_db.id("dave"), web_db.id("erin")]
    response = client.post("/api/monitor/start-many", json={"customer_ids": ids})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["started"], body["already"], body["refused"]) == ("success", 1, 1, 3)
    by_id = {r["customer_id"]: r for r in body["results"]}
    assert [r["customer_id"] for r in body["results"]] == ids
    assert by_id[frank]["status"] == "already" and by_id[frank]["session_id"] == before["session_id"]
    assert by_id[grace]["status"] == "started" and by_id[grace]["state"] == "starting"
    assert by_id[grace]["task_id"] == f"monitor-{by_id[grace]['session_id']}-1"
    # Refusals carry what a single start answers for that customer: status, code, message.
    for cid in (missing, web_db.id("dave"), web_db.id("erin")):
        single = client.post(f"/api/monitor/start?customer_id={cid}")
        refused = by_id[cid]
        assert refused["status"] == "refused"
        assert (refused["http_status"], refused["code"], refused["message"]) == (
            single.status_code,
            single.json()["code"],
            single.json()["message"],
        )
    row = sessions.open_for_customer(grace)
    assert row is not None and row.requested_by == "api"


def test_monitor_start_many_refuses_a_malformed_body(client: TestClient, web_db: WebDb) -> None:
    assert_error(client.post("/api/monitor/start-many", json={"customer_ids": []}), 400, "invalid_body")
    assert_error(client.post("/api/monitor/start-many", json={"customer_ids": ["nope"]}), 400, "invalid_body")
    too_many = [str(uuid.uuid4()) for _ in range(1001)]
    assert_error(client.post("/api/monitor/start-many", json={"customer_ids": too_many}), 400, "invalid_body")


def test_monitor_start_with_ping_false_is_remembered_for_the_session(
    client: TestClient, web_db: WebDb, stop_all: None
) -> None:
    frank, grace = web_db.id("frank"), web_db.id("grace")
    off = client.post(f"/api/monitor/start?customer_id={frank}&ping=false").json()
    assert web_db.redis.get(session_ping(off["session_id"])) == b"off"
    many = client.post("/api/monitor/start-many", json={"customer_ids": [grace], "ping": False}).json()
    assert web_db.redis.get(session_ping(many["results"][0]["session_id"])) == b"off"
    for cid in (frank, grace):
        client.post(f"/api/monitor/stop?customer_id={cid}")
    on = client.post(f"/api/monitor/start?customer_id={frank}").json()  # the default: MONITOR_PING
    assert web_db.redis.get(session_ping(on["session_id"])) is None
    body = assert_error(
        client.post(f"/api/monitor/start?customer_id={grace}&ping=no"), 400, "invalid_parameter"
    )
    assert body["parameter"] == "ping"
    assert_error(
        client.post("/api/monitor/start-many", json={"customer_ids": [grace], "ping": "no"}),
        400,
        "invalid_body",
    )
