"""GET /api/customers/{id}/sessions and GET /api/sessions/{id}: JSON, CSV and refusals,
over reports the engine's own code wrote into PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from harness.web import serving
from tasks.message import CustomerMeta
from tests.tasks.report_entries import probe, sample
from tests.web.reports import ended_session, open_session
from tests.web.responses import assert_error
from tests.web.webdb import WebDb
from web.queries.reports import CSV_COLUMNS


def _meta(customer_id: str) -> CustomerMeta:
    return CustomerMeta(
        customer_id,
        "Grace Example",
        "grace",
        "pppoe",
        "<pppoe-grace>",
        "r1",
        package="home-10M",
        package_download_bps=10_000_000,
        package_upload_bps=5_000_000,
    )


@pytest.fixture(scope="module")
def grace(web_db: WebDb) -> tuple[str, list[str]]:
    """Grace's three ended sessions, oldest first: (customer id, session ids)."""
    cid = web_db.id("grace")
    meta = _meta(cid)
    made = []
    for n in range(3):
        entries: list[dict[str, str]] = []
        for seq in range(4 + n):
            entries.append(
                sample(9_500_000, 1_000_000 * seq, seq, meta=meta, session_id=str(uuid.UUID(int=0)))
            )
            entries.append(probe(10.0 + seq, meta=meta))
        made.append(ended_session(cid, entries, reason=f"stop {n}"))
    return cid, made


def test_reports_list_is_newest_first_and_paged(client: TestClient, grace: tuple[str, list[str]]) -> None:
    cid, made = grace
    body = client.get(f"/api/customers/{cid}/sessions").json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 20, 0)
    assert [r["session_id"] for r in body["items"]] == made[::-1]
    page = client.get(f"/api/customers/{cid}/sessions?limit=1&offset=1").json()
    assert [r["session_id"] for r in page["items"]] == [made[1]] and page["total"] == 3
    assert client.get(f"/api/customers/{cid}/sessions?offset=3").json()["items"] == []


def test_reports_one_session_json_has_every_number(client: TestClient, grace: tuple[str, list[str]]) -> None:
    cid, made = grace
    report = client.get(f"/api/sessions/{made[0]}").json()
    assert report == client.get(f"/api/customers/{cid}/sessions").json()["items"][2]
    assert (report["session_id"], report["customer_id"], report["username"]) == (made[0], cid, "grace")
    assert (report["samples"], report["stop_reason"], report["partial"]) == (4, "stop 0", False)
    assert report["download"] == {
        "peak_bps": 9_500_000,
        "avg_bps": 9_500_000,
        "p95_bps": 9_500_000,
        "bytes": 4 * 9_500_000 // 8,
        "at_plan_s": 4.0,
    }
    assert report["upload"]["peak_bps"] == 3_000_000
    assert report["rtt"]["probes"] == 4 and report["rtt"]["load_median_ms"] == 11.5
    assert report["started_at"].endswith("Z") and report["ended_at"] >= report["started_at"]
    assert report["package_download_bps"] == 10_000_000 and report["verdict"] is None


def test_reports_csv_flattens_one_row_per_report(client: TestClient, grace: tuple[str, list[str]]) -> None:
    cid, made = grace
    response = client.get(f"/api/customers/{cid}/sessions?format=csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="sessions-{cid}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["session_id"] for r in rows] == made[::-1]
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert {"download_peak_bps", "upload_p95_bps", "rtt_median_ms", "rtt_load_p95_ms"} <= set(CSV_COLUMNS)
    one = list(csv.DictReader(io.StringIO(client.get(f"/api/sessions/{made[0]}?format=csv").text)))
    assert len(one) == 1 and one[0] == rows[2]
    assert (one[0]["download_peak_bps"], one[0]["partial"], one[0]["verdict"]) == ("9500000", "false", "")
    assert one[0]["rtt_median_ms"] == "11.5"


def test_reports_customer_without_sessions_has_an_empty_list(client: TestClient, web_db: WebDb) -> None:
    body = client.get(f"/api/customers/{web_db.id('bob')}/sessions").json()
    assert body == {"items": [], "total": 0, "limit": 20, "offset": 0}
    rows = list(
        csv.reader(io.StringIO(client.get(f"/api/customers/{web_db.id('bob')}/sessions?format=csv").text))
    )
    assert rows == [list(CSV_COLUMNS)]


def test_reports_refusals_name_the_problem(client: TestClient, web_db: WebDb) -> None:
    assert_error(client.get(f"/api/customers/{uuid.uuid4()}/sessions"), 404, "customer_not_found")
    assert_error(client.get(f"/api/sessions/{uuid.uuid4()}"), 404, "session_not_found")
    running = open_session(web_db.id("frank"))
    body = assert_error(client.get(f"/api/sessions/{running}"), 404, "report_not_found")
    assert running in body["message"]
    for path in ("/api/sessions/not-a-uuid", "/api/customers/12/sessions"):
        assert assert_error(client.get(path), 400, "invalid_parameter")["parameter"] in (
            "session_id",
            "customer_id",
        )
    cid = web_db.id("grace")
    for query, name in (
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("offset=-1", "offset"),
        ("format=xml", "format"),
    ):
        body = assert_error(client.get(f"/api/customers/{cid}/sessions?{query}"), 400, "invalid_parameter")
        assert body["parameter"] == name


@pytest.fixture(scope="module")
def guarded(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A uvicorn with API_TOKEN set; its URL."""
    env = {**os.environ, "API_TOKEN": "reports-t0ken-7f2b-Kq8We3Ri5Ty1Ux4Op"}
    log: Path = tmp_path_factory.mktemp("reports") / "uvicorn.log"
    with serving(env, log) as uvicorn:
        yield uvicorn.url


def test_reports_need_the_token_like_every_route(guarded: str, grace: tuple[str, list[str]]) -> None:
    cid, made = grace
    for path in (f"/api/customers/{cid}/sessions", f"/api/sessions/{made[0]}?format=csv"):
        assert_error(httpx.get(f"{guarded}{path}"), 401, "unauthorized")
    token = {"Authorization": "Bearer reports-t0ken-7f2b-Kq8We3Ri5Ty1Ux4Op"}
    assert httpx.get(f"{guarded}/api/sessions/{made[0]}", headers=token).json()["session_id"] == made[0]
