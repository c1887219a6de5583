"""/api/customers: search, page, read, create, update, delete; passwords are write-only."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy import text as sql
from starlette.testclient import TestClient

from models import MonitorSession
from tasks import sessions
from tests.tasks.streams import customer_entries
from tests.web.responses import assert_error
from tests.web.webdb import HOTSPOT_PASSWORD, OTHER_ROUTER, PPPOE_PASSWORD, ROUTER_ID, WebDb


def _new(router: str | None = None, **fields: Any) -> dict[str, Any]:
    name = f"u{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "mikrotik_id": router or ROUTER_ID,
        "username": name,
        "name": f"Customer {name}",
        "service_type": "pppoe",
        "pppoe_username": name,
    }
    body.update(fields)
    return body


def _create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/customers", json=_new(**fields))
    assert response.status_code == 201, response.text
    return response.json()["customer"]


def test_customers_list_default_page_sorted_by_name_with_total(client: TestClient, web_db: WebDb) -> None:
    body = client.get(f"/api/customers?router={ROUTER_ID}&limit=3").json()
    assert body["status"] == "ok" and (body["limit"], body["offset"]) == (3, 0)
    names = [c["name"] for c in body["customers"]]
    assert names == sorted(names) and len(names) == 3
    everything = client.get(f"/api/customers?router={ROUTER_ID}&limit=500").json()
    assert body["total"] == everything["total"] == len(everything["customers"])


def test_customers_list_pages_do_not_overlap(client: TestClient) -> None:
    router = f"page-{uuid.uuid4().hex[:6]}"
    made = {_create(client, router=router)["id"] for _ in range(5)}
    seen: list[str] = []
    for offset in (0, 2, 4):
        page = client.get(f"/api/customers?router={router}&limit=2&offset={offset}").json()
        assert page["total"] == 5
        seen += [c["id"] for c in page["customers"]]
    assert len(seen) == 5 and set(seen) == made


def test_customers_search_is_case_insensitive_over_four_fields(client: TestClient) -> None:
    router = f"q-{uuid.uuid4().hex[:6]}"
    by_name = _create(client, router=router, name="Siti Rahmawati")
    by_username = _create(client, router=router, username="RAHMA.home")
    by_pppoe = _create(client, router=router, pppoe_username="pp-rahma-01")
    by_hotspot = _create(client, router=router, service_type="hotspot", hotspot_username="hs-Rahma")
    _create(client, router=router, name="Someone Else")
    body = client.get(f"/api/customers?router={router}&q=rAhMa").json()
    found = {c["id"] for c in body["customers"]}
    assert found == {by_name["id"], by_username["id"], by_pppoe["id"], by_hotspot["id"]}
    assert body["total"] == 4


def test_customers_list_total_says_whether_it_is_capped(client: TestClient) -> None:
    # The cap itself (1,000 past the page) is tests/web/test_customer_search.py's: here,
    # that the answer carries the flag and takes exact_total.
    router = f"cap-{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        _create(client, router=router)
    for exact in ("", "&exact_total=true", "&exact_total=false"):
        body = client.get(f"/api/customers?router={router}&limit=2{exact}").json()
        assert (body["total"], body["total_capped"], len(body["customers"])) == (3, False, 2)


def test_customers_search_treats_wildcards_literally(client: TestClient) -> None:
    router = f"w-{uuid.uuid4().hex[:6]}"
    literal = _create(client, router=router, name="100%_real")
    _create(client, router=router, name="1000 real")
    body = client.get(f"/api/customers?router={router}&q=0%25_").json()  # q = "0%_"
    assert [c["id"] for c in body["customers"]] == [literal["id"]]


def test_customers_filters_combine(client: TestClient, web_db: WebDb) -> None:
    body = client.get(f"/api/customers?router={ROUTER_ID}&service_type=pppoe&status=suspended").json()
    assert [c["username"] for c in body["customers"]] == ["dave"] and body["total"] == 1
    body = client.get(f"/api/customers?router={OTHER_ROUTER}").json()
    assert [c["username"] for c in body["customers"]] == ["carol"]


def _open_session(customer_id: str) -> str:
    session_id = uuid.uuid4()
    with sessions.db() as s:
        s.add(
            MonitorSession(
                id=session_id,
                customer_id=uuid.UUID(customer_id),
                router_id=ROUTER_ID,
                desired_state="running",
                actual_state="running",
                attempt=1,
            )
        )
    return str(session_id)


def _close_session(session_id: str) -> None:
    sessions.close(session_id, "test over")


def test_customers_monitored_filter_and_monitored_first(client: TestClient) -> None:
    router = f"m-{uuid.uuid4().hex[:6]}"
    a = _create(client, router=router, name="A first by name")
    z = _create(client, router=router, name="Z last by name")
    session_id = _open_session(z["id"])
    try:
        monitored = client.get(f"/api/customers?router={router}&monitored=true").json()
        assert [c["id"] for c in monitored["customers"]] == [z["id"]] and monitored["total"] == 1
        assert monitored["customers"][0]["monitored"] is True
        assert monitored["customers"][0]["monitor_state"] == "running"
        idle = client.get(f"/api/customers?router={router}&monitored=false").json()
        assert [c["id"] for c in idle["customers"]] == [a["id"]]
        assert idle["customers"][0]["monitored"] is False and idle["customers"][0]["monitor_state"] is None
        plain = client.get(f"/api/customers?router={router}").json()
        assert [c["id"] for c in plain["customers"]] == [a["id"], z["id"]]
        first = client.get(f"/api/customers?router={router}&monitored_first=true").json()
        assert [c["id"] for c in first["customers"]] == [z["id"], a["id"]]
    finally:
        _close_session(session_id)
    assert client.get(f"/api/customers?router={router}&monitored=true").json()["total"] == 0


def test_customers_get_one_with_package(client: TestClient, web_db: WebDb) -> None:
    body = client.get(f"/api/customers/{web_db.id('alice')}").json()
    customer = body["customer"]
    assert body["status"] == "ok" and customer["username"] == "alice"
    assert customer["package"] == {
        "id": web_db.package_id,
        "name": "home-50M",
        "download_bps": 50_000_000,
        "upload_bps": 20_000_000,
    }
    assert customer["created_at"].endswith("+00:00")


def test_customers_get_unknown_is_404(client: TestClient) -> None:
    body = assert_error(client.get(f"/api/customers/{uuid.uuid4()}"), 404, "customer_not_found")
    assert "no customer" in body["message"]


def test_customers_passwords_are_never_returned(client: TestClient, web_db: WebDb) -> None:
    texts = [
        client.get(f"/api/customers/{web_db.id('alice')}").text,
        client.get(f"/api/customers/{web_db.id('bob')}").text,
        client.get("/api/customers?limit=500").text,
    ]
    made_response = client.post("/api/customers", json=_new(pppoe_password="Brand-new-pw!1"))
    made = made_response.json()
    patched_response = client.patch(
        f"/api/customers/{made['customer']['id']}", json={"hotspot_password": "Other-pw!2"}
    )
    patched = patched_response.json()
    texts += [made_response.text, patched_response.text]
    for text in texts:
        for secret in (PPPOE_PASSWORD, HOTSPOT_PASSWORD, "Brand-new-pw!1", "Other-pw!2"):
            assert secret not in text
        assert '"pppoe_password"' not in text and '"hotspot_password"' not in text
    alice = client.get(f"/api/customers/{web_db.id('alice')}").json()["customer"]
    assert (alice["has_pppoe_password"], alice["has_hotspot_password"]) == (True, False)
    assert patched["customer"]["has_pppoe_password"] and patched["customer"]["has_hotspot_password"]


def test_customers_create_normalises_and_defaults(client: TestClient, web_db: WebDb) -> None:
    made = _create(
        client,
        service_type="hotspot",
        pppoe_username=None,
        hotspot_username="hs-new",
        hotspot_mac_address="AA-BB-CC-DD-EE-FF",
        package_id=web_db.package_id,
    )
    assert made["hotspot_mac_address"] == "aa:bb:cc:dd:ee:ff"
    assert made["status"] == "active"  # the API's own default
    assert made["package"]["name"] == "home-50M"
    assert client.get(f"/api/customers/{made['id']}").json()["customer"] == made


def test_customers_create_takes_an_integral_number_as_an_integer(client: TestClient, web_db: WebDb) -> None:
    # JSON Schema counts 3.0 as an integer; the handler gets it as one.
    made = _create(client, package_id=float(web_db.package_id))
    assert made["package_id"] == web_db.package_id and made["package"]["name"] == "home-50M"


def test_customers_create_without_status_is_active_though_the_column_says_inactive(
    client: TestClient, web_db: WebDb
) -> None:
    made = _create(client)
    assert made["status"] == "active"
    # The same schema fills 'inactive' into a row inserted without a status (revision
    # 0005, the seed's newest default): the API's 'active' is its own, not the column's.
    engine = create_engine(web_db.url)
    try:
        with engine.connect() as conn:  # never committed: the module's other tests share the schema
            conn.execute(
                sql(
                    "INSERT INTO customers (mikrotik_id, username, name, service_type) "
                    "VALUES (:router, :username, 'Raw Insert', 'pppoe')"
                ),
                {"router": ROUTER_ID, "username": f"raw-{uuid.uuid4().hex[:8]}"},
            )
            assert (
                conn.scalar(sql("SELECT status::text FROM customers WHERE name = 'Raw Insert'")) == "inactive"
            )
    finally:
        engine.dispose()


def test_customers_create_refusals_name_the_field(client: TestClient, web_db: WebDb) -> None:
    # The schema says what the data layer accepts, so malformed values stop at the 400...
    for fields, field in (
        ({"static_ip": "10.0.0.300"}, "static_ip"),
        ({"assigned_ip": "fe80::1%eth0"}, "assigned_ip"),
        ({"mac_address": "aa:bb:cc:dd:ee"}, "mac_address"),
        ({"hotspot_mac_address": "aa:bb-cc:dd:ee:ff"}, "hotspot_mac_address"),
        ({"mac_address": "aa:bb:cc:dd:ee:ff\n"}, "mac_address"),
        ({"name": "   "}, "name"),
        ({"name": "\u3000\x1c"}, "name"),  # whitespace to str.strip, if not to every regex engine
    ):
        body = assert_error(client.post("/api/customers", json=_new(**fields)), 400, "invalid_body")
        assert body["field"] == field
    # ...and what only the database knows is the data layer's 422.
    body = assert_error(client.post("/api/customers", json=_new(package_id=999_999)), 422, "invalid_field")
    assert body["field"] == "package_id" and "no package" in body["message"]


def test_customers_create_accepts_every_address_form_the_data_layer_takes(client: TestClient) -> None:
    made = _create(
        client,
        static_ip="10.0.0.0/29",
        assigned_ip="2001:db8::1",
        mac_address="aabb.ccdd.eeff",
        hotspot_mac_address="AABBCC-DDEEFF",
    )
    assert (made["static_ip"], made["assigned_ip"]) == ("10.0.0.0/29", "2001:db8::1")
    assert made["mac_address"] == made["hotspot_mac_address"] == "aa:bb:cc:dd:ee:ff"


def test_customers_duplicate_username_on_a_router_is_409(client: TestClient, web_db: WebDb) -> None:
    body = assert_error(
        client.post("/api/customers", json=_new(username="alice", pppoe_username="alice-2")),
        409,
        "duplicate_customer",
    )
    assert body["field"] == "username" and "alice" in body["message"]
    # The same username on another router is another customer.
    assert client.post("/api/customers", json=_new(router="elsewhere", username="alice")).status_code == 201


def test_customers_patch_changes_only_what_is_given(client: TestClient) -> None:
    made = _create(client, phone="0811", email="a@example.net")
    body = client.patch(f"/api/customers/{made['id']}", json={"phone": None, "status": "active"}).json()
    assert body["message"] == "Customer updated"
    after = body["customer"]
    assert (after["phone"], after["status"], after["email"]) == (None, "active", "a@example.net")
    assert after["name"] == made["name"] and after["pppoe_username"] == made["pppoe_username"]


def test_customers_patch_refusals(client: TestClient, web_db: WebDb) -> None:
    made = _create(client)
    assert_error(client.patch(f"/api/customers/{made['id']}", json={}), 400, "invalid_body")
    body = assert_error(
        client.patch(f"/api/customers/{made['id']}", json={"pppoe_username": "alice"}),
        409,
        "duplicate_customer",
    )
    assert body["field"] == "pppoe_username"
    body = assert_error(
        client.patch(f"/api/customers/{made['id']}", json={"mac_address": "nope"}), 400, "invalid_body"
    )
    assert body["field"] == "mac_address"
    assert_error(
        client.patch(f"/api/customers/{uuid.uuid4()}", json={"phone": "1"}), 404, "customer_not_found"
    )
    # Nothing of the refused updates stuck.
    again = client.get(f"/api/customers/{made['id']}").json()["customer"]
    assert again["pppoe_username"] == made["pppoe_username"] and again["mac_address"] is None


def test_customers_delete_removes_the_row(client: TestClient) -> None:
    made = _create(client)
    body = client.delete(f"/api/customers/{made['id']}").json()
    assert body == {
        "status": "success",
        "message": "Customer deleted",
        "customer_id": made["id"],
        "monitor_stopped": False,
    }
    assert_error(client.get(f"/api/customers/{made['id']}"), 404, "customer_not_found")
    assert_error(client.delete(f"/api/customers/{made['id']}"), 404, "customer_not_found")


def test_customers_delete_stops_the_monitor_first(client: TestClient, web_db: WebDb) -> None:
    made = _create(client, status="active")
    started = client.post(f"/api/monitor/start?customer_id={made['id']}").json()
    assert started["message"] == "Monitoring started"
    body = client.delete(f"/api/customers/{made['id']}").json()
    assert body["monitor_stopped"] is True
    # The stop went through the service: the `stopped` event names the deletion.
    entries = customer_entries(web_db.redis, made["id"])
    assert [(e["type"], e["reason"]) for e in entries] == [("stopped", "stopped by api: customer deleted")]
    with sessions.db() as s:
        assert (
            s.scalars(select(MonitorSession).where(MonitorSession.customer_id == uuid.UUID(made["id"]))).all()
            == []
        )
