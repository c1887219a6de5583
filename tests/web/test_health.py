"""/health (alive) and /ready (database, Redis, a monitors worker, the reconciler, auth)."""

from __future__ import annotations

import os
import socket
import time

import anyio
from starlette.testclient import TestClient

from settings import load_settings
from tasks.keys import RECONCILER_LAST_RUN
from tests.web.local import LOCAL_URL
from tests.web.responses import assert_error
from tests.web.webdb import WebDb
from web.app import create_app
from web.metrics import WebMetrics
from web.readiness import check_beat
from web.state import open_state
from web.throttle import AuthThrottle


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_answers_ok_even_with_every_dependency_down(web_db: WebDb) -> None:
    port = _closed_port()
    settings = load_settings(
        {
            "DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:{port}/test",
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "ENV_FILE": "/nonexistent",
        }
    )
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        response = client.get("/health")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        ready = client.get("/ready")
    body = assert_error(ready, 503, "not_ready")
    assert not body["checks"]["database"]["ok"] and not body["checks"]["redis"]["ok"]
    assert body["message"].startswith("not ready: database, redis")


def test_ready_without_workers_or_beat_names_both(client: TestClient, web_db: WebDb) -> None:
    web_db.redis.delete(RECONCILER_LAST_RUN)
    body = assert_error(client.get("/ready"), 503, "not_ready")
    assert body["message"] == "not ready: workers, beat"
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["redis"]["ok"]
    assert "monitors queue" in checks["workers"]["detail"] and checks["workers"]["workers"] == []
    assert "has not run" in checks["beat"]["detail"]
    assert body["auth"] == "disabled"


def test_ready_reports_auth_and_a_recent_reconciler_pass(web_db: WebDb) -> None:
    web_db.redis.set(RECONCILER_LAST_RUN, str(int(time.time() * 1000)))
    token = "t0ken-value-for-ready-Qm3v8Zr2Lx7Kp4Wn"
    settings = load_settings({**os.environ, "API_TOKEN": token})
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        assert client.get("/ready").status_code == 401  # every route but /health needs the token
        body = client.get(
            "/ready", headers={"Authorization": "Bearer t0ken-value-for-ready-Qm3v8Zr2Lx7Kp4Wn"}
        ).json()
    assert body["auth"] == "enabled" and token not in str(body)
    assert body["checks"]["beat"]["ok"] and body["message"] == "not ready: workers"


def test_ready_beat_check_refuses_a_stale_pass(web_db: WebDb) -> None:
    settings = load_settings(dict(os.environ))  # RECONCILE_INTERVAL=1: stale after 3 x 1 + 5 s
    web_db.redis.set(RECONCILER_LAST_RUN, str(int((time.time() - 9) * 1000)))

    async def check() -> dict[str, object]:
        async with open_state(settings, WebMetrics(), AuthThrottle(1, 1.0)) as state:
            return await check_beat(state)

    result = anyio.run(check)
    assert result["ok"] is False and "limit 8 s" in str(result["detail"])
