"""PING_MAX_PER_ROUTER across the workers: beyond it a monitor runs without ping and its
`started` event says so; a place comes back when its monitor ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from tasks import keys, service
from tasks.ping_cap import pings_running as places_held
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitors
from tests.tasks.pings import latency_entries, pings_running, started_event, wait_latency
from tests.tasks.streams import session_samples, wait_entry


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=3, hotspot=0, static=0, MONITOR_PING="true", PING_MAX_PER_ROUTER="1")
    # Two processes: the cap holds across workers, not per process.
    eng.start_worker("monitors", concurrency=4, name="cap-a")
    eng.start_worker("monitors", concurrency=4, name="cap-b")
    eng.start_worker("default", concurrency=2, name="cap-ctl")
    eng.start_beat()
    yield eng


def test_monitor_ping_cap_beyond_it_a_monitor_runs_without_ping(engine: Engine) -> None:
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[:2]]
    monitors = start_monitors(engine, ids, requested_by="test")
    try:
        said = {cid: started_event(engine.redis, cid, m.session_id)["ping"] for cid, m in monitors.items()}
        assert sorted(said.values()) == ["capped", "on"], said
        pinging = next(cid for cid, state in said.items() if state == "on")
        capped = next(cid for cid, state in said.items() if state == "capped")
        wait_latency(engine.redis, pinging, monitors[pinging].session_id, 3, 10.0)
        wait_for(
            lambda: len(session_samples(engine.redis, capped, monitors[capped].session_id)) >= 3,
            10.0,
            what="samples of the capped monitor",
        )
        assert latency_entries(engine.redis, capped, monitors[capped].session_id) == []
        assert pings_running(engine) == 1
        assert places_held(engine.redis, ROUTER_ID) == 1
    finally:
        for cid in ids:
            service.stop(cid, requested_by="test")
            wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 10.0, "stopped")
    wait_for(lambda: pings_running(engine) == 0, 5.0, what="the ping cancelled")
    assert engine.redis.exists(keys.ping_slots(ROUTER_ID)) == 0, "the place given back at the end"
