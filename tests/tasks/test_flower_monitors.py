"""Flower as an operator uses it, driven through Flower's own HTTP API (not read-only):
find a monitor by the customer's username, see it as a monitor (not buried under the
reconciler's runs), revoke it with terminate, and read the revoke as a revoke."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.polling import wait_for
from tasks.lifecycle import REVOKED
from tests.tasks.engine import Engine
from tests.tasks.flower import start_flower
from tests.tasks.monitors import start_monitor
from tests.tasks.streams import matches, wait_entry

USER, PASSWORD = "noc", "Fl0wer-ops-4k"


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=3, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=4, name="fl-mon")
    eng.start_worker("default", concurrency=2, name="fl-ctl")
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def flower(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield start_flower(engine, tmp_path_factory.mktemp("flower"), USER, PASSWORD)


def _get(flower: str, path: str, **params: str) -> Any:
    response = httpx.get(f"{flower}{path}", params=params, auth=(USER, PASSWORD), timeout=10.0)
    assert response.status_code == 200, response.text
    return response.json()


def test_flower_finds_a_monitor_by_username_and_revokes_it_cleanly(engine: Engine, flower: str) -> None:
    username = engine.usernames("pppoe")[0]
    cid = engine.customer_id(username)
    info = start_monitor(engine, cid, requested_by="test").info
    assert info.task_id

    found = wait_for(
        lambda: _get(flower, "/api/tasks", search=username).get(info.task_id), 15.0, what="flower to list it"
    )
    assert found["name"] == "tasks.monitor.monitor" and found["state"] == "STARTED"
    # Where it runs: the worker process that holds its router (tasks/affinity.py).
    assert found["worker"].startswith("fl-mon@"), found
    for shown in (username, cid, "sim-router", f"<pppoe-{engine.customers[username]['pppoe_username']}>"):
        assert shown in found["kwargs"], found["kwargs"]
    # The reconciler runs every second here, but sends no events: only monitors are listed.
    everything = _get(flower, "/api/tasks", limit="50")
    assert {t["name"] for t in everything.values()} == {"tasks.monitor.monitor"}
    assert not found.get("expires")  # no Celery expiry on a monitor that runs for hours

    revoked = httpx.post(
        f"{flower}/api/task/revoke/{info.task_id}",
        params={"terminate": "true", "signal": "SIGTERM"},
        auth=(USER, PASSWORD),
        timeout=10.0,
    )
    assert revoked.status_code == 200, revoked.text
    stopped = wait_entry(engine.redis, cid, matches(type="stopped"), 5.0, "stopped")
    assert stopped["reason"] == REVOKED
    wait_for(
        lambda: _get(flower, f"/api/task/info/{info.task_id}")["state"] == "REVOKED",
        10.0,
        what="flower to show the monitor as revoked",
    )
    log = next(p for p in engine.processes if p.name == "fl-mon").log()
    assert "NotImplementedError" not in log and "kill_job" not in log
    assert "terminate requested: monitors stop cooperatively" in log
    assert os.environ.get("FLOWER_BASIC_AUTH") is None  # credentials only in Flower's own env
