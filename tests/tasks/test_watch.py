"""The router watch with real processes: a monitors worker, the control worker and beat
(the reconciler launches it), the simulator as the router, PostgreSQL and Redis."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from tasks import keys, service, sessions, watch_lifecycle
from tasks.semaphore import Semaphore
from tests.tasks.conftest import Engine, customer_entries, wait_entry
from tests.tasks.streams import decoded

PPPOE, HOTSPOT, STATIC = 12, 3, 3
TOP_N = 5


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(
        pppoe=PPPOE,
        hotspot=HOTSPOT,
        static=STATIC,
        ROUTER_WATCH="true",
        ROUTER_WATCH_INTERVAL="1",
        ROUTER_TOP_N=str(TOP_N),
    )
    eng.start_worker("default", concurrency=2, name="control")
    eng.start_worker("monitors", concurrency=8, name="monitors")
    eng.start_beat()
    yield eng


def _frames(engine: Engine) -> list[dict[str, Any]]:
    return [e for e in decoded(engine.redis.xrange(keys.router_stream(ROUTER_ID))) if e["type"] == "top"]


def _events(engine: Engine, kind: str, customer_id: str) -> list[dict[str, Any]]:
    entries = decoded(engine.redis.xrange(keys.router_stream(ROUTER_ID)))
    return [e for e in entries if e["type"] == kind and e["customer_id"] == customer_id]


def _view(engine: Engine) -> dict[str, Any]:
    raw = engine.redis.hget(keys.router_view(ROUTER_ID), "json")
    return {} if raw is None else json.loads(raw)


def _watch_tokens(engine: Engine) -> list[str]:
    return [h.token for h in watch_lifecycle.semaphore(engine.redis).holders()]


def _rated_frame(engine: Engine) -> dict[str, Any] | None:
    """The newest frame once every customer has a rate (the second cycle on)."""
    frames = _frames(engine)
    if frames and frames[-1]["customers"] == PPPOE + HOTSPOT + STATIC:
        return frames[-1]
    return None


def test_watch_one_per_router_publishes_frames_and_the_view(engine: Engine) -> None:
    wait_for(lambda: _watch_tokens(engine), 20, what="the reconciler to launch the router's watch")
    frame = wait_for(lambda: _rated_frame(engine), 20, what="a top frame with every customer's rate")
    tokens = _watch_tokens(engine)
    assert len(tokens) == 1 and tokens[0].startswith(f"watch:{ROUTER_ID}:")
    assert Semaphore(engine.redis).in_use() == 0  # no monitor slot taken
    assert frame["router"] == ROUTER_ID and frame["router_name"] == "sim-router"
    assert (frame["online"], frame["unknown"], frame["interval_ms"]) == (PPPOE + HOTSPOT, 0, 1000)
    top = frame["top"]
    assert len(top) == TOP_N
    downloads = [row["download_bps"] for row in top]
    assert downloads == sorted(downloads, reverse=True)
    assert frame["download_bps"] >= sum(downloads) and all(row["monitored"] is False for row in top)
    ids = {e["id"] for e in decoded(engine.redis.xrange(keys.COMBINED_STREAM)) if e["type"] == "top"}
    assert frame["id"] in ids  # its summary, under the same id
    view = _view(engine)
    assert view["status"] == "ok" and view["online"] == PPPOE + HOTSPOT
    assert sum(1 for row in view["rows"] if row["session"] is not None) == PPPOE + HOTSPOT
    assert sum(1 for row in view["rows"] if row["service_type"] == "static_ip") == STATIC


def test_watch_costs_the_router_two_commands_a_cycle(engine: Engine) -> None:
    wait_for(lambda: _rated_frame(engine), 20, what="the watch to run")
    before, frames_before = engine.sim.stats()["commands_total"], len(_frames(engine))
    time.sleep(5.0)  # a window of cycles (measured, not waited on for a result)
    commands = engine.sim.stats()["commands_total"] - before
    cycles = len(_frames(engine)) - frames_before
    assert cycles >= 3
    assert commands <= 3 * (cycles + 1), f"{commands} commands in {cycles} cycles"


def test_watch_session_events_and_customer_state(engine: Engine) -> None:
    wait_for(lambda: _rated_frame(engine), 20, what="the watch to run")
    username = engine.usernames("pppoe")[0]
    cid = engine.customer_id(username)
    engine.sim.drop_pppoe(username)
    down = wait_for(lambda: _events(engine, "session_down", cid), 10, what="session_down")[-1]
    assert down["router"] == ROUTER_ID and down["session"] == "pppoe" and down["name"] == username
    assert down["reason"] is None  # the listen's .dead row gives none
    engine.sim.restore_pppoe(username)
    up = wait_for(lambda: _events(engine, "session_up", cid), 10, what="session_up")[-1]
    assert (
        ipaddress.ip_address(up["address"]) and up["caller_id"] == engine.customers[username]["mac_address"]
    )
    assert up["id"] > down["id"]
    combined = {e["id"] for e in decoded(engine.redis.xrange(keys.COMBINED_STREAM))}
    assert {up["id"], down["id"]} <= combined

    def written() -> Any:
        from models import Customer

        with sessions.db() as s:
            row = s.get(Customer, uuid.UUID(cid))
            assert row is not None
            return row.last_online is not None and row.assigned_ip == up["address"]

    wait_for(written, 10, what="customers.last_online and assigned_ip")


def test_watch_lists_unknown_sessions_and_learns_new_customers(engine: Engine) -> None:
    from models import Customer

    wait_for(lambda: _rated_frame(engine), 20, what="the watch to run")
    username = engine.usernames("pppoe")[1]
    cid = engine.customer_id(username)
    with sessions.db() as s:
        row = s.get(Customer, uuid.UUID(cid))
        assert row is not None
        saved = {c.key: getattr(row, c.key) for c in Customer.__table__.columns}
        s.delete(row)
    # A restarted watch reads the customers afresh (and shows the reconciler restarts it).
    old = _watch_tokens(engine)
    watch_lifecycle.request_stop(engine.redis, ROUTER_ID, "test restart")
    wait_for(lambda: _watch_tokens(engine) and _watch_tokens(engine) != old, 20, what="a new watch")

    def listed() -> Any:
        unknown = _view(engine).get("unknown", [])
        return [u for u in unknown if u["name"] == username]

    (entry,) = wait_for(listed, 20, what="the deleted customer's session among the unknown")
    assert entry["kind"] == "pppoe" and entry["caller_id"] == engine.customers[username]["mac_address"]
    frame = wait_for(lambda: _frames(engine)[-1] if _frames(engine)[-1]["unknown"] == 1 else None, 10)
    assert frame["online"] == PPPOE + HOTSPOT  # counted, not dropped
    with sessions.db() as s:
        s.add(Customer(**saved))
    # An unknown login makes the watch re-read its customers soon (not only every minute).
    wait_for(lambda: not listed(), 30, what="the customer to be known again")


def test_watch_wakes_a_pppoe_monitor_when_its_session_comes_back(engine: Engine) -> None:
    wait_for(lambda: _rated_frame(engine), 20, what="the watch to run")
    username = engine.usernames("pppoe")[2]
    cid = engine.customer_id(username)
    info = service.start(cid, requested_by="test")
    try:
        wait_entry(engine.redis, cid, lambda e: e["type"] == "traffic", 15, "a first sample")
        engine.sim.drop_pppoe(username)
        wait_entry(engine.redis, cid, lambda e: e["type"] == "offline", 15, "the monitor to go offline")
        time.sleep(10.0)  # let its backoff grow to several seconds between retries
        restored = time.time()
        engine.sim.restore_pppoe(username)
        resumed = wait_entry(engine.redis, cid, lambda e: e["type"] == "resumed", 15, "resumed")
        waited = int(resumed["id"].split("-")[0]) / 1000 - restored
        assert "session up, retrying now" in engine.log_of("monitors")
        assert waited < 3.0, f"resumed {waited:.1f}s after the session came back"
    finally:
        service.stop(cid, requested_by="test")
    assert any(e["type"] == "stopped" for e in customer_entries(engine.redis, cid))
    assert info.session_id


def test_watch_is_stopped_when_disabled_and_relaunched(engine: Engine) -> None:
    from settings import get_settings

    wait_for(lambda: _watch_tokens(engine), 20, what="a watch")
    old = _watch_tokens(engine)
    off = replace(get_settings(), router_watch=False)
    summary = watch_lifecycle.reconcile_watches(engine.redis, {ROUTER_ID: "sim-router"}, off)
    assert summary["watches_stopped"] == 1
    wait_for(
        lambda: f"ended: {watch_lifecycle.DISABLED}" in engine.log_of("monitors"),
        10,
        what="the watch to stop with the reason",
    )
    # ROUTER_WATCH is still true for the control worker: its reconciler starts it again.
    wait_for(lambda: _watch_tokens(engine) and _watch_tokens(engine) != old, 20, what="a new watch")
    flower_view = engine.log_of("monitors")
    assert f"tasks.watch.watch[watch-{ROUTER_ID}-" in flower_view
