"""A monitors worker's Prometheus endpoint (WORKER_METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from harness.process import free_port
from tasks import service
from tests.metrics import scrape
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor
from tests.tasks.streams import wait_entry

PORT = free_port()
METRICS_URL = f"http://127.0.0.1:{PORT}/metrics"


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=3, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=4, name="metrics", WORKER_METRICS_PORT=str(PORT))
    yield eng


def test_worker_metrics_move_while_a_monitor_runs(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    info = start_monitor(engine, cid, requested_by="test", timeout=8.0)

    def counted_two() -> dict[str, float] | None:
        values = scrape(METRICS_URL)
        return values if values.get("mtmon_worker_samples_published_total{}", 0) >= 2 else None

    values = wait_for(counted_two, 10.0, what="two samples counted")
    assert values["mtmon_worker_monitors_running{}"] == 1
    assert values["mtmon_worker_router_connections{router=sim-1}"] == 1
    assert values["mtmon_worker_monitor_runs_total{kind=first}"] == 1
    assert values["mtmon_worker_status_events_total{type=started}"] == 1
    assert values["mtmon_worker_publish_latency_seconds_count{}"] >= 2
    wait_for(
        lambda: scrape(METRICS_URL).get("mtmon_worker_lease_renewals_total{result=ok}", 0) >= 1,
        5.0,
        what="a renewal",
    )
    service.stop(cid, requested_by="test")
    wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 5.0, "stopped")
    wait_for(lambda: scrape(METRICS_URL)["mtmon_worker_monitors_running{}"] == 0, 5.0, what="nothing running")
    assert info.session_id
