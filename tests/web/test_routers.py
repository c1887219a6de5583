"""/api/routers: table rows plus the settings' default router, monitor counts, no secrets;
and each router's view as its watch stored it: top customers, sessions, unknown logins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.seed import ROUTER_PASSWORD, apply_env
from tasks import keys
from tasks.semaphore import Semaphore
from tests.web.local import LOCAL_URL
from tests.web.responses import assert_error
from tests.web.webdb import OTHER_ROUTER, ROUTER_ID, WebDb
from web.app import create_app
from web.validation import body_validator


def test_routers_lists_rows_and_ids_that_only_customers_name(client: TestClient, web_db: WebDb) -> None:
    body = client.get("/api/routers").json()
    assert body["status"] == "ok"
    routers = {r["id"]: r for r in body["routers"]}
    assert set(routers) == {ROUTER_ID, OTHER_ROUTER}
    assert routers[ROUTER_ID] == {
        "id": ROUTER_ID,
        "name": "core-1",
        "host": "127.0.0.1",
        "port": 1,
        "tls": False,
        "tls_mode": "verify",
        "max_monitors": None,
        "max_api_sessions": 2,  # ROUTER_MAX_API_SESSIONS: the row leaves it NULL
        "source": "table",
        "customers": 6,
        "monitors_open": 0,
        "monitors_running": 0,
    }
    default = routers[OTHER_ROUTER]
    assert (default["source"], default["host"], default["port"], default["customers"]) == (
        "settings",
        "127.0.0.1",
        8728,
        1,
    )


def test_routers_count_open_and_running_monitors(client: TestClient, web_db: WebDb) -> None:
    cid = web_db.id("frank")
    assert client.post(f"/api/monitor/start?customer_id={cid}").status_code == 200
    try:
        routers = {r["id"]: r for r in client.get("/api/routers").json()["routers"]}
        assert (routers[ROUTER_ID]["monitors_open"], routers[ROUTER_ID]["monitors_running"]) == (1, 1)
        assert routers[OTHER_ROUTER]["monitors_open"] == 0
    finally:
        client.post(f"/api/monitor/stop?customer_id={cid}")
    routers = {r["id"]: r for r in client.get("/api/routers").json()["routers"]}
    assert routers[ROUTER_ID]["monitors_open"] == 0


def test_routers_never_show_credentials(client: TestClient) -> None:
    text = client.get("/api/routers").text
    assert ROUTER_PASSWORD not in text
    assert "password" not in text and "username" not in text


# -- the router view: /top, /sessions, /unknown-sessions ----------------------------------------


@pytest.fixture(scope="module")
def watched(web_db: WebDb) -> Iterator[TestClient]:
    """The app with ROUTER_WATCH on (the web reads it to say why a view is missing)."""
    apply_env({"ROUTER_WATCH": "true"})
    try:
        with TestClient(create_app(), base_url=LOCAL_URL) as test_client:
            yield test_client
    finally:
        apply_env({"ROUTER_WATCH": "false"})


_SCHEMAS = {"top": "RouterTop", "sessions": "RouterSessions", "unknown-sessions": "RouterUnknownSessions"}


def _get(client: TestClient, router: str, route: str, **params: Any) -> dict[str, Any]:
    """One view route's 200 answer, checked against the schema /openapi.json declares."""
    response = client.get(f"/api/routers/{router}/{route}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body_validator(_SCHEMAS[route]).check(body)
    return body


def _publish_view(web_db: WebDb, *, offline: str | None = None) -> None:
    """A view as the router's watch writes it: r1's customers from the database, two
    sessions, one unknown login and a rate for each of three customers."""
    from tasks import sessions
    from tasks.router_customers import load_directory
    from tasks.router_view import Rates, build_view
    from tasks.semaphore import WATCHES, Semaphore
    from tasks.session_table import Session
    from tasks.watch_publisher import WatchPublisher

    fence = Semaphore(web_db.redis, space=WATCHES).acquire(
        "watch:r1:t", ROUTER_ID, ROUTER_ID, global_limit=100, router_limit=1, ttl=600
    )
    with sessions.db() as s:
        directory = load_directory(s, ROUTER_ID)
    online = [
        Session("pppoe", "*1", "alice", "10.1.0.2", "AA:00:00:00:00:01", 3600, 0.0),
        Session("hotspot", "*2", "bob", "10.5.0.3", "AA:00:00:00:00:02", 60, 0.0),
        Session("pppoe", "*3", "mallory", "10.1.0.9", "AA:00:00:00:00:09", 5, 0.0),
    ]
    rates = Rates(
        customers={
            web_db.id("alice"): (40_000_000, 1_000_000),  # 80 % of 50M down
            web_db.id("bob"): (10_000_000, 19_000_000),  # 95 % of 20M up
            web_db.id("frank"): (45_000_000, 10),
        },
        unknown={("pppoe", "mallory"): (1_000, 100)},
    )
    view = build_view(directory, online, rates, now=0.0)
    state: dict[str, Any] = {
        "router": ROUTER_ID,
        "router_name": "core-1",
        **view.state(interval=2.0, cycle_ms=7),
    }
    if offline is not None:
        state = {"router": ROUTER_ID, "router_name": "core-1", "status": "offline", "reason": offline}
    WatchPublisher(web_db.redis, ROUTER_ID).publish(
        [], token="watch:r1:t", fence=fence, view=json.dumps(state)
    )


def test_routers_view_of_an_unknown_router_is_404_naming_it(watched: TestClient) -> None:
    for route in ("top", "sessions", "unknown-sessions"):
        body = assert_error(watched.get(f"/api/routers/nowhere/{route}"), 404, "router_not_found")
        assert body["router_id"] == "nowhere" and "nowhere" in body["message"]


def test_routers_view_before_a_frame_and_with_the_watch_off_says_why(
    client: TestClient, watched: TestClient, web_db: WebDb
) -> None:
    web_db.redis.delete(keys.router_view(ROUTER_ID))
    body = _get(watched, ROUTER_ID, "top")
    assert (body["available"], body["top"], body["online"]) == (False, [], None)
    assert body["reason"].startswith("no frame yet")
    off = _get(client, OTHER_ROUTER, "sessions")  # ROUTER_WATCH=false there
    assert off["available"] is False and "ROUTER_WATCH=false" in off["reason"]
    assert off["router_name"] == OTHER_ROUTER and off["sessions"] == [] and off["total"] == 0


def test_routers_top_sorts_by_download_upload_or_utilization(watched: TestClient, web_db: WebDb) -> None:
    _publish_view(web_db)
    Semaphore(web_db.redis).acquire(
        "s-bob:1", web_db.id("bob"), ROUTER_ID, global_limit=100, router_limit=None, ttl=600
    )
    body = _get(watched, ROUTER_ID, "top")
    assert body["available"] is True and body["reason"] is None and body["age_s"] >= 0
    assert (body["online"], body["unknown"], body["customers"], body["interval_ms"]) == (3, 1, 3, 2000)
    assert body["download_bps"] == 95_001_000
    names = [row["username"] for row in body["top"]]
    assert names == ["frank", "alice", "bob"] and body["by"] == "download"
    assert [row["monitored"] for row in body["top"]] == [False, False, True]
    by_upload = _get(watched, ROUTER_ID, "top", by="upload", limit=2)
    assert [row["username"] for row in by_upload["top"]] == ["bob", "alice"]
    by_use = _get(watched, ROUTER_ID, "top", by="utilization")
    assert [row["username"] for row in by_use["top"]] == ["bob", "frank", "alice"]
    assert by_use["top"][0]["upload_utilization"] == 95.0
    assert_error(
        watched.get(f"/api/routers/{ROUTER_ID}/top", params={"by": "name"}), 400, "invalid_parameter"
    )


def test_routers_sessions_search_and_page_with_unknown_logins(watched: TestClient, web_db: WebDb) -> None:
    _publish_view(web_db)
    body = _get(watched, ROUTER_ID, "sessions")
    assert body["total"] == 3 and [s["name"] for s in body["sessions"]] == ["alice", "bob", "mallory"]
    alice = body["sessions"][0]
    assert alice["customer"]["id"] == web_db.id("alice") and alice["session"] == "pppoe"
    assert (alice["address"], alice["uptime_s"], alice["download_bps"]) == ("10.1.0.2", 3600, 40_000_000)
    assert body["sessions"][2]["customer"] is None  # mallory: no customer has that login
    found = _get(watched, ROUTER_ID, "sessions", q="BOB EX")
    assert [s["name"] for s in found["sessions"]] == ["bob"]  # by the customer's name
    page = _get(watched, ROUTER_ID, "sessions", limit=1, offset=1)
    assert (page["total"], [s["name"] for s in page["sessions"]]) == (3, ["bob"])
    unknown = _get(watched, ROUTER_ID, "unknown-sessions")
    assert unknown["count"] == 1 and unknown["sessions"][0]["name"] == "mallory"
    assert unknown["sessions"][0]["download_bps"] == 1_000


def test_routers_view_of_an_unreachable_router_gives_its_reason(watched: TestClient, web_db: WebDb) -> None:
    _publish_view(web_db, offline="router unreachable: Connection refused")
    body = _get(watched, ROUTER_ID, "top")
    assert body["available"] is False and body["reason"] == "router unreachable: Connection refused"
    assert body["top"] == [] and body["timestamp"] is not None
