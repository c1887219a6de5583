"""The seed's flow over real HTTP: uvicorn + Celery monitors and control workers + beat +
the RouterOS simulator, PostgreSQL and Redis (engine_factory from tests/tasks)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import pytest

from harness.polling import wait_for
from harness.seed import ROUTER_ID, ROUTER_PASSWORD, apply_env
from harness.web import Uvicorn
from tasks.keys import RECONCILER_LAST_RUN
from tests.tasks.engine import BASE_ENV, Engine
from tests.tasks.streams import wait_entry


@dataclass
class Live:
    engine: Engine
    server: Uvicorn
    http: httpx.Client
    bodies: list[str] = field(default_factory=list)  # every response body seen, for the secret check


@pytest.fixture(scope="module")
def live(engine_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # The engine fixture reads the Celery configuration before it applies BASE_ENV, and
    # settings refuse CELERY_VISIBILITY_TIMEOUT=60 with the default 30 s lease TTL: apply
    # the shrunk TTLs first (engine_factory restores the environment afterwards).
    apply_env(BASE_ENV)
    engine = engine_factory(pppoe=3, hotspot=1, static=1)
    engine.start_worker("monitors", concurrency=8, name="web-mon")
    engine.start_worker("default", concurrency=2, name="web-ctl")
    engine.start_beat()
    server = Uvicorn(engine.env, tmp_path_factory.mktemp("uvicorn") / "uvicorn.log").start()
    bodies: list[str] = []

    def record(response: httpx.Response) -> None:
        response.read()
        bodies.append(response.text)

    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=15.0, event_hooks={"response": [record]}) as http:
            yield Live(engine, server, http, bodies)
    finally:
        server.stop()


def _status(live: Live) -> dict[str, Any]:
    response = live.http.get("/api/monitor/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_live_start_samples_status_stop(live: Live) -> None:
    username = live.engine.usernames("pppoe")[0]
    cid = live.engine.customer_id(username)
    interface = f"<pppoe-{live.engine.customers[username]['pppoe_username']}>"

    started = live.http.post("/api/monitor/start", params={"customer_id": cid})
    assert started.status_code == 200, started.text
    body = started.json()
    assert (body["status"], body["message"], body["customer_id"], body["router"]) == (
        "success",
        "Monitoring started",
        cid,
        ROUTER_ID,
    )

    # Samples reach the customer's stream, and the traffic route reads them back.
    wait_entry(live.engine.redis, cid, lambda e: e["type"] == "traffic", 15.0, "the first sample in Redis")
    samples = wait_for(
        lambda: [
            e
            for e in live.http.get(f"/api/customers/{cid}/traffic").json()["entries"]
            if e["type"] == "traffic"
        ],
        10.0,
        what="samples through the traffic route",
    )
    assert samples[0]["interface"] == interface and samples[0]["session_id"] == body["session_id"]

    def running() -> dict[str, Any]:
        status = _status(live)
        ok = cid in status["active_monitors"] and status["monitors"][0]["state"] == "running"
        return status if ok else {}

    status = wait_for(running, 10.0, what="the monitor to be running in /api/monitor/status")
    assert status["monitor_count"] == 1 and status["slots_available"] == status["max_concurrent"] - 1
    [monitor] = status["monitors"]
    assert (monitor["customer_id"], monitor["interface"], monitor["live"]) == (cid, interface, True)
    assert monitor["last_sample_at"] is not None and monitor["started_at"] is not None

    again = live.http.post("/api/monitor/start", params={"customer_id": cid}).json()
    assert again["message"] == "Already monitoring" and again["session_id"] == body["session_id"]

    stopped = live.http.post("/api/monitor/stop", params={"customer_id": cid})
    assert stopped.status_code == 200 and stopped.json()["message"] == "Monitoring stopped"
    wait_for(
        lambda: any(
            e["type"] == "stopped" for e in live.http.get(f"/api/customers/{cid}/traffic").json()["entries"]
        ),
        10.0,
        what="the stopped event through the traffic route",
    )
    wait_for(
        lambda: cid not in _status(live)["active_monitors"], 10.0, what="the monitor to leave the status"
    )
    gone = live.http.post("/api/monitor/stop", params={"customer_id": cid})
    assert gone.status_code == 404 and gone.json()["code"] == "not_monitored"

    rows = list(csv.reader(io.StringIO(live.http.get(f"/api/customers/{cid}/traffic.csv").text)))
    assert rows[0][0] == "timestamp" and len(rows) - 1 == len(
        [
            e
            for e in live.http.get(f"/api/customers/{cid}/traffic").json()["entries"]
            if e["type"] == "traffic"
        ]
    )


def test_live_ready_sees_database_redis_worker_and_reconciler(live: Live) -> None:
    # The reconciler's heartbeat, as the engine writes it on every pass.
    live.engine.redis.set(RECONCILER_LAST_RUN, str(int(time.time() * 1000)))
    for _ in range(3):  # the early-ending broadcast works call after call
        response = live.http.get("/ready")
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "ok" and all(check["ok"] for check in body["checks"].values())
        assert any(name.startswith("web-mon@") for name in body["checks"]["workers"]["workers"])


def test_live_no_secret_in_any_response_or_the_server_log(live: Live) -> None:
    for path in ("/api/routers", "/api/customers?limit=500", "/openapi.json", "/api/monitor/status"):
        assert live.http.get(path).status_code == 200
    for username in live.engine.customers:
        live.http.get(f"/api/customers/{live.engine.customer_id(username)}")
    secrets = {ROUTER_PASSWORD}
    for customer in live.engine.customers.values():
        secrets |= {customer.get("pppoe_password") or "", customer.get("hotspot_password") or ""}
    secrets.discard("")
    assert len(secrets) > 3
    log = live.server.log()
    assert "Uvicorn running" in log or "Application startup complete" in log
    for secret in secrets:
        assert secret not in log
        for text in live.bodies:
            assert secret not in text
