"""/api/routers: table rows plus the settings' default router, monitor counts, no secrets."""

from __future__ import annotations

from starlette.testclient import TestClient

from harness.seed import ROUTER_PASSWORD
from tests.web.webdb import OTHER_ROUTER, ROUTER_ID, WebDb


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
