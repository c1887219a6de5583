"""/api/alert-rules and /api/webhooks: CRUD against a migrated schema, refusals naming the field."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.web.responses import assert_error
from tests.web.webdb import ROUTER_ID, WebDb

SECRET = "whsec-0123456789-leak-check"


def _rule(**fields: Any) -> dict[str, Any]:
    return {
        "name": "busy",
        "kind": "utilization",
        "params": {"direction": "upload", "threshold_pct": 90, "for_s": 30},
        **fields,
    }


def test_alert_rules_default_rules_shipped_one_of_each_kind_disabled(client: TestClient) -> None:
    rules = client.get("/api/alert-rules").json()["rules"]
    defaults = [r for r in rules if r["id"] <= 5]
    assert sorted(r["kind"] for r in defaults) == sorted(
        ["utilization", "session_flaps", "router_total", "watch_offline", "rtt"]
    )
    assert all(r["enabled"] is False and r["scope"] == "all" for r in defaults)


def test_alert_rules_create_read_update_delete(client: TestClient, web_db: WebDb) -> None:
    created = client.post("/api/alert-rules", json=_rule(scope=f"customer:{web_db.id('alice')}"))
    assert created.status_code == 201, created.text
    rule = created.json()["rule"]
    assert rule["enabled"] is False and rule["scope"] == f"customer:{web_db.id('alice')}"
    assert client.get(f"/api/alert-rules/{rule['id']}").json()["rule"] == rule
    changed = client.patch(
        f"/api/alert-rules/{rule['id']}", json={"enabled": True, "scope": f"router:{ROUTER_ID}"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["rule"]["enabled"] is True
    assert changed.json()["rule"]["scope"] == f"router:{ROUTER_ID}"
    switched = client.patch(
        f"/api/alert-rules/{rule['id']}",
        json={"kind": "session_flaps", "params": {"count": 6, "window_min": 60}},
    )
    assert switched.json()["rule"]["params"] == {"count": 6, "window_min": 60}
    deleted = client.delete(f"/api/alert-rules/{rule['id']}")
    assert deleted.json() == {"status": "success", "message": "Alert rule deleted", "rule_id": rule["id"]}
    assert_error(client.get(f"/api/alert-rules/{rule['id']}"), 404, "alert_rule_not_found")


def test_alert_rules_refusals_name_the_field(client: TestClient) -> None:
    bad_param = client.post(
        "/api/alert-rules", json=_rule(params={"direction": "sideways", "threshold_pct": 90, "for_s": 1})
    )
    assert assert_error(bad_param, 400, "invalid_body")["field"] == "params.direction"
    unknown = client.post(
        "/api/alert-rules",
        json=_rule(params={"direction": "upload", "threshold_pct": 90, "for_s": 1, "x": 1}),
    )
    assert assert_error(unknown, 400, "invalid_body")["field"] == "params.x"
    missing = client.post("/api/alert-rules", json=_rule(kind="router_total", params={"for_s": 5}))
    assert assert_error(missing, 400, "invalid_body")["field"] == "params.threshold_bps"
    neither = client.post("/api/alert-rules", json=_rule(kind="rtt", params={"window_s": 60}))
    assert assert_error(neither, 400, "invalid_body")["field"] == "params"
    scope = client.post("/api/alert-rules", json=_rule(scope="planet:earth"))
    assert assert_error(scope, 400, "invalid_body")["field"] == "scope"
    nobody = client.post(
        "/api/alert-rules", json=_rule(scope="customer:00000000-0000-0000-0000-000000000000")
    )
    assert assert_error(nobody, 422, "invalid_field")["field"] == "scope"
    kind_only = client.patch("/api/alert-rules/1", json={"kind": "watch_offline"})  # params of utilization
    assert assert_error(kind_only, 400, "invalid_body")["field"] == "params"
    duplicate = client.post("/api/alert-rules", json=_rule(name="Router watch offline for 1 minute"))
    assert assert_error(duplicate, 409, "duplicate_name")["field"] == "name"
    assert_error(client.get("/api/alert-rules/abc"), 400, "invalid_parameter")


def test_webhooks_create_read_update_delete_never_return_the_secret(client: TestClient) -> None:
    created = client.post(
        "/api/webhooks", json={"name": "chat", "url": "https://chat.example.net/hook/T1", "secret": SECRET}
    )
    assert created.status_code == 201, created.text
    hook = created.json()["webhook"]
    assert hook["format"] == "generic" and hook["enabled"] is True and hook["has_secret"] is True
    assert "secret" not in hook
    changed = client.patch(f"/api/webhooks/{hook['id']}", json={"format": "alertmanager", "enabled": False})
    assert changed.json()["webhook"]["format"] == "alertmanager"
    for answer in (
        created,
        changed,
        client.get("/api/webhooks"),
        client.get(f"/api/webhooks/{hook['id']}"),
        client.get("/openapi.json"),
    ):
        assert SECRET not in answer.text
    assert client.delete(f"/api/webhooks/{hook['id']}").json()["webhook_id"] == hook["id"]
    assert_error(client.get(f"/api/webhooks/{hook['id']}"), 404, "webhook_not_found")


def test_webhooks_refusals_name_the_field(client: TestClient) -> None:
    ftp = client.post("/api/webhooks", json={"name": "x", "url": "ftp://example.net/", "secret": SECRET})
    assert assert_error(ftp, 400, "invalid_body")["field"] == "url"
    userinfo = client.post(
        "/api/webhooks", json={"name": "x", "url": "https://user:pw@example.net/", "secret": SECRET}
    )
    body = assert_error(userinfo, 400, "invalid_body")
    assert body["field"] == "url" and "pw@" not in userinfo.text
    bad_port = client.post(
        "/api/webhooks", json={"name": "x", "url": "http://example.net:99999/", "secret": SECRET}
    )
    assert assert_error(bad_port, 400, "invalid_body")["field"] == "url"
    short = client.post("/api/webhooks", json={"name": "x", "url": "https://example.net/", "secret": "short"})
    assert assert_error(short, 400, "invalid_body")["field"] == "secret"
    fmt = client.post(
        "/api/webhooks", json={"name": "x", "url": "https://example.net/", "secret": SECRET, "format": "xml"}
    )
    assert assert_error(fmt, 400, "invalid_body")["field"] == "format"
    missing = client.post("/api/webhooks", json={"name": "x", "url": "https://example.net/"})
    assert assert_error(missing, 400, "invalid_body")["field"] == "secret"


def test_webhook_deliveries_filter_and_retry_refusals(client: TestClient) -> None:
    listed = client.get("/api/webhook-deliveries", params={"state": "dead"})
    assert listed.status_code == 200 and listed.json()["total"] == 0
    assert_error(client.get("/api/webhook-deliveries", params={"state": "lost"}), 400, "invalid_parameter")
    unknown = client.post("/api/webhook-deliveries/00000000-0000-0000-0000-000000000000/retry")
    assert_error(unknown, 404, "delivery_not_found")
    assert_error(client.post("/api/webhook-deliveries/nope/retry"), 400, "invalid_parameter")
