"""/api/customers/{id}/traffic and traffic.csv over a real per-customer stream."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from starlette.testclient import TestClient

from common.text import as_text
from settings import get_settings
from tasks.keys import customer_stream
from tasks.message import CustomerMeta, Rates, status_entry, traffic_entry
from tests.web.responses import assert_error
from tests.web.webdb import WebDb

BASE_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def _meta(customer_id: str, package: bool = True) -> CustomerMeta:
    return CustomerMeta(
        customer_id,
        "Alice Example",
        "alice",
        "pppoe",
        "<pppoe-alice>",
        "r1",
        package="home-50M" if package else None,
        package_download_bps=50_000_000 if package else None,
        package_upload_bps=20_000_000 if package else None,
    )


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@pytest.fixture
def stream(web_db: WebDb) -> tuple[str, list[str]]:
    """Alice's stream: `started`, five samples one second apart, `stopped`; returns the ids."""
    cid = web_db.id("alice")
    key = customer_stream(cid)
    web_db.redis.delete(key)
    session = str(uuid.uuid4())
    meta = _meta(cid)
    entries = [status_entry("started", meta, session_id=session, seq=0, fence=1, timestamp=_at(BASE_MS))]
    for i in range(1, 6):
        rates = Rates(str(i * 1000), str(i * 10_000_000), i * 10_000_000, i * 1000, None, None)
        entries.append(
            traffic_entry(meta, rates, session_id=session, seq=i, fence=1, timestamp=_at(BASE_MS + i * 1000))
        )
    entries.append(
        status_entry(
            "stopped",
            meta,
            session_id=session,
            seq=6,
            fence=1,
            reason="stop requested",
            timestamp=_at(BASE_MS + 6000),
        )
    )
    ids = []
    for i, fields in enumerate(entries):
        ids.append(as_text(web_db.redis.xadd(key, fields, id=f"{BASE_MS + i * 1000}-0")))  # type: ignore[arg-type]
    return cid, ids


def test_traffic_returns_every_retained_entry_oldest_first(
    client: TestClient, stream: tuple[str, list[str]]
) -> None:
    cid, ids = stream
    body = client.get(f"/api/customers/{cid}/traffic").json()
    assert [e["id"] for e in body["entries"]] == ids
    assert [e["type"] for e in body["entries"]] == ["started"] + ["traffic"] * 5 + ["stopped"]
    sample = body["entries"][1]
    assert (sample["download_bps"], sample["upload_bps"], sample["download_utilization"]) == (
        10_000_000,
        1000,
        20.0,
    )
    assert (body["next"], body["more"], body["gap"], body["retention_seconds"]) == (
        ids[-1],
        False,
        None,
        get_settings().customer_stream_retention,
    )
    assert body["customer_id"] == cid and body["status"] == "ok"


def test_traffic_since_an_id_is_exclusive(client: TestClient, stream: tuple[str, list[str]]) -> None:
    cid, ids = stream
    body = client.get(f"/api/customers/{cid}/traffic?since={ids[2]}").json()
    assert [e["id"] for e in body["entries"]] == ids[3:] and body["gap"] is None


def test_traffic_limit_pages_without_duplicates(client: TestClient, stream: tuple[str, list[str]]) -> None:
    cid, ids = stream
    seen: list[str] = []
    since = ""
    for _ in range(4):
        body = client.get(f"/api/customers/{cid}/traffic?limit=3{since}").json()
        seen += [e["id"] for e in body["entries"]]
        if not body["more"]:
            break
        since = f"&since={body['next']}"
    assert seen == ids
    # Nothing new: the same cursor comes back, so a poller can keep using it.
    assert client.get(f"/api/customers/{cid}/traffic?since={ids[-1]}").json()["next"] == ids[-1]


def test_traffic_since_a_time_includes_that_millisecond(
    client: TestClient, stream: tuple[str, list[str]]
) -> None:
    cid, ids = stream
    moment = _at(BASE_MS + 3000).isoformat().replace("+00:00", "Z")
    body = client.get(f"/api/customers/{cid}/traffic", params={"since": moment}).json()
    assert [e["id"] for e in body["entries"]] == ids[3:]
    later = client.get(f"/api/customers/{cid}/traffic", params={"since": "2099-01-01T00:00:00Z"}).json()
    assert later["entries"] == [] and later["next"] is not None
    again = client.get(f"/api/customers/{cid}/traffic", params={"since": later["next"]})
    assert again.status_code == 200 and again.json()["next"] == later["next"]
    jakarta = _at(BASE_MS + 3000).astimezone(timezone(timedelta(hours=7))).isoformat()  # same instant
    assert (
        client.get(f"/api/customers/{cid}/traffic", params={"since": jakarta}).json()["entries"]
        == body["entries"]
    )


def test_traffic_since_older_than_retention_reports_the_gap(
    client: TestClient, web_db: WebDb, stream: tuple[str, list[str]]
) -> None:
    cid, ids = stream
    web_db.redis.xtrim(customer_stream(cid), minid=ids[3], approximate=False)  # as retention would
    body = client.get(f"/api/customers/{cid}/traffic?since={ids[1]}").json()
    assert body["gap"] == {"from": ids[1], "to": ids[3]}
    assert [e["id"] for e in body["entries"]] == ids[3:]
    assert client.get(f"/api/customers/{cid}/traffic?since={ids[3]}").json()["gap"] is None


@pytest.mark.parametrize("since", ["yesterday", "12-ab", "2026-11-24T10:00:00", "99999999999999999999999-0"])
def test_traffic_malformed_since_is_400(client: TestClient, web_db: WebDb, since: str) -> None:
    body = assert_error(
        client.get(f"/api/customers/{web_db.id('alice')}/traffic", params={"since": since}),
        400,
        "invalid_parameter",
    )
    assert body["parameter"] == "since"


def test_traffic_of_unknown_customer_is_404(client: TestClient) -> None:
    assert_error(client.get(f"/api/customers/{uuid.uuid4()}/traffic"), 404, "customer_not_found")
    assert_error(client.get(f"/api/customers/{uuid.uuid4()}/traffic.csv"), 404, "customer_not_found")


def test_traffic_of_customer_never_monitored_is_empty(client: TestClient, web_db: WebDb) -> None:
    body = client.get(f"/api/customers/{web_db.id('dave')}/traffic").json()
    assert (body["entries"], body["next"], body["more"], body["gap"]) == ([], None, False, None)


def test_traffic_csv_has_the_samples_only(client: TestClient, stream: tuple[str, list[str]]) -> None:
    cid, _ = stream
    response = client.get(f"/api/customers/{cid}/traffic.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="traffic-{cid}.csv"'
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "timestamp",
        "download_bps",
        "upload_bps",
        "download_utilization",
        "upload_utilization",
    ]
    assert len(rows) == 6
    assert rows[1] == ["2025-11-24T16:00:01.000Z", "10000000", "1000", "20.0", "0.01"]


def test_traffic_csv_without_package_leaves_utilization_empty(client: TestClient, web_db: WebDb) -> None:
    cid = web_db.id("bob")
    key = customer_stream(cid)
    web_db.redis.delete(key)
    rates = Rates("5", "7", 7, 5, None, None)
    fields = traffic_entry(_meta(cid, package=False), rates, session_id=uuid.uuid4(), seq=1, fence=1)
    web_db.redis.xadd(key, fields)  # type: ignore[arg-type]
    rows = list(csv.reader(io.StringIO(client.get(f"/api/customers/{cid}/traffic.csv").text)))
    assert rows[1][1:] == ["7", "5", "", ""]
