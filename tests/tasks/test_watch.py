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
from tests.tasks.engine import Engine
from tests.tasks.flower import start_flower
from tests.tasks.streams import customer_entries, decoded, wait_entry

PPPOE, HOTSPOT, STATIC = 12, 3, 3
CUSTOMERS = PPPOE + HOTSPOT + STATIC
TOP_N = 50  # every customer of this router is in each frame (test_router_view cuts a top short)


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(
        pppoe=PPPOE,
        hotspot=HOTSPOT,
        static=STATIC,
        ROUTER_WATCH="true",
        ROUTER_WATCH_INTERVAL="1",
        ROUTER_TOP_N=str(TOP_N),
        simulator={"version": "6.49.10"},  # removals say .dead=yes (7.x: true; both are read)
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
    if frames and frames[-1]["customers"] == CUSTOMERS:
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
    assert len(top) == CUSTOMERS
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
    frames_before = len(_frames(engine))
    engine.sim.reset_command_counts()
    time.sleep(5.0)  # a window of cycles (measured, not waited on for a result)
    counts = engine.sim.reset_command_counts()
    cycles = len(_frames(engine)) - frames_before
    assert cycles >= 3
    # Each cycle: one print of the pppoe-in interfaces and one of the queues; the
    # sessions come by listen, issued once (keepalive probes need an idle link: none).
    assert counts.get("/interface/print", 0) in (cycles, cycles + 1), counts
    assert counts.get("/queue/simple/print", 0) in (cycles, cycles + 1), counts
    assert sum(counts.values()) <= 3 * (cycles + 1), counts


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
    assert _key(up) > _key(down)
    combined = {e["id"] for e in decoded(engine.redis.xrange(keys.COMBINED_STREAM))}
    assert {up["id"], down["id"]} <= combined

    def written() -> Any:
        from models import Customer

        with sessions.db() as s:
            row = s.get(Customer, uuid.UUID(cid))
            assert row is not None
            return row.last_online is not None and row.assigned_ip == up["address"]

    wait_for(written, 10, what="customers.last_online and assigned_ip")


def test_watch_hotspot_logout_and_login_are_session_events(engine: Engine) -> None:
    wait_for(lambda: _rated_frame(engine), 20, what="the watch to run")
    username = engine.usernames("hotspot")[0]
    cid = engine.customer_id(username)
    engine.sim.drop_hotspot(username)
    down = wait_for(lambda: _events(engine, "session_down", cid), 10, what="the logout")[-1]
    assert down["session"] == "hotspot" and down["caller_id"] == engine.customers[username]["mac_address"]
    engine.sim.restore_hotspot(username)
    wait_for(lambda: _events(engine, "session_up", cid), 10, what="the login")
    # Its queue came back with counters from zero: no spike, a rate again soon.
    frame = wait_for(
        lambda: (
            _rated_frame(engine) if _rated_frame(engine) and _key(_frames(engine)[-1]) > _key(down) else None
        ),
        10,
        what="a frame with every customer rated again",
    )
    row = next((r for r in frame["top"] if r["customer_id"] == cid), None)
    assert row is None or row["download_bps"] <= 2 * (row["package_download_bps"] or 10**9)


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
    service.start(cid, requested_by="test")
    try:
        last = wait_entry(engine.redis, cid, lambda e: e["type"] == "traffic", 15, "a first sample")["id"]
        # The monitor's own retry can win the race against the notice (it retries every
        # few seconds by then): the scenario is played again until the notice came first.
        for _ in range(3):
            engine.sim.drop_pppoe(username)
            offline = _next_entry(engine, cid, "offline", after=last)
            time.sleep(10.0)  # let its backoff grow to several seconds between retries
            engine.sim.restore_pppoe(username)
            up = _next_event(engine, "session_up", cid, after=offline["id"])
            resumed = _next_entry(engine, cid, "resumed", after=offline["id"])
            last = resumed["id"]
            if _key(resumed) > _key(up):
                break
        else:
            pytest.fail("the monitor resumed by its own retry three times before the session-up notice")
        waited = (_ms(resumed) - _ms(up)) / 1000
        assert waited < 2.0, f"resumed {waited:.1f}s after the session came back"
        assert "session up, retrying now" in engine.log_of("monitors")
    finally:
        service.stop(cid, requested_by="test")
    # The stop is asynchronous: the monitor publishes `stopped` within a second or so.
    wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 10, "the stopped event")


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
    # A router that vanished (no routers row, no customer) has its watch stopped.
    old = _watch_tokens(engine)
    summary = watch_lifecycle.reconcile_watches(engine.redis, {}, get_settings())
    assert (summary["watches_stopped"], summary["watches_started"]) == (1, 0)
    wait_for(
        lambda: f"ended: {watch_lifecycle.ROUTER_GONE}" in engine.log_of("monitors"),
        10,
        what="the watch of a vanished router to stop",
    )
    wait_for(lambda: _watch_tokens(engine) and _watch_tokens(engine) != old, 20, what="a new watch")
    flower_view = engine.log_of("monitors")
    assert f"tasks.watch.watch[watch-{ROUTER_ID}-" in flower_view


def test_watch_rate_agrees_with_the_customers_monitor_within_ten_percent(engine: Engine) -> None:
    """Over a window of at least 10 s, the bits the watch's cycles report for a customer
    (counter deltas) against the average of its monitor's monitor-traffic samples."""
    frame = wait_for(lambda: _rated_frame(engine), 20, what="the watch to run")
    pppoe_ids = {engine.customer_id(u): u for u in engine.usernames("pppoe")[4:]}
    busiest = max((r for r in frame["top"] if r["customer_id"] in pppoe_ids), key=lambda r: r["download_bps"])
    cid = busiest["customer_id"]
    service.start(cid, requested_by="test")
    try:
        first = wait_entry(engine.redis, cid, lambda e: e["type"] == "traffic", 15, "a first sample")
        start_ms = int(first["id"].split("-")[0])
        wait_for(
            lambda: len([f for f in _frames(engine) if _ms(f) > start_ms + 1000]) >= 12,
            30,
            what="12 cycles beside the monitor",
        )
        time.sleep(1.5)  # the samples that cover the last cycle's second
    finally:
        service.stop(cid, requested_by="test")
    frames = [f for f in _frames(engine) if _ms(f) > start_ms + 1000][:12]
    before = [f for f in _frames(engine) if _ms(f) < _ms(frames[0])][-1]
    span_s = (_ms(frames[-1]) - _ms(before)) / 1000
    assert span_s >= 10.0
    watch_bits = {"download_bps": 0.0, "upload_bps": 0.0}
    previous = before
    for f in frames:
        row = next(r for r in f["top"] if r["customer_id"] == cid)
        for key in watch_bits:
            watch_bits[key] += row[key] * (_ms(f) - _ms(previous)) / 1000
        previous = f
    # A sample at s is the rate over the second before s: the samples with s in
    # (t0 + 0.5, tn + 0.5] cover the watch's span (t0, tn] give or take half a second.
    lo, hi = _ms(before) + 500, _ms(frames[-1]) + 500
    samples = [e for e in customer_entries(engine.redis, cid) if e["type"] == "traffic" and lo < _ms(e) <= hi]
    assert len(samples) >= 9
    for key in watch_bits:
        watched = watch_bits[key] / span_s
        monitored = sum(e[key] for e in samples) / len(samples)
        assert abs(watched - monitored) <= max(0.10 * monitored, 20_000), (
            f"{key}: watch {watched:.0f} bps, monitor {monitored:.0f} bps over {span_s:.1f}s"
        )


def _ms(entry: dict[str, Any]) -> int:
    return int(entry["id"].split("-")[0])


def _key(entry: dict[str, Any]) -> tuple[int, int]:
    ms, _, seq = entry["id"].partition("-")
    return int(ms), int(seq)


def _next_entry(engine: Engine, cid: str, kind: str, after: str) -> dict[str, Any]:
    """The customer's first `kind` entry after the id `after`."""
    floor = _key({"id": after})
    return wait_entry(engine.redis, cid, lambda e: e["type"] == kind and _key(e) > floor, 15, kind)


def _next_event(engine: Engine, kind: str, cid: str, after: str) -> dict[str, Any]:
    """The router stream's first `kind` event of the customer after the id `after`."""
    floor = _key({"id": after})
    found = wait_for(lambda: [e for e in _events(engine, kind, cid) if _key(e) > floor], 10, what=kind)
    return found[0]


def test_watch_says_why_while_the_router_is_away_and_catches_up_after(engine: Engine) -> None:
    wait_for(lambda: _rated_frame(engine), 20, what="the watch to run")
    username = engine.usernames("pppoe")[3]
    cid = engine.customer_id(username)
    engine.sim.refuse_connections(True)
    try:
        engine.sim.close_connections()
        engine.sim.drop_pppoe(username)  # while nobody listens
        view = wait_for(lambda: _view(engine) if _view(engine).get("status") == "offline" else None, 20)
        assert view["reason"].startswith("router unreachable")
    finally:
        engine.sim.refuse_connections(False)
    # Back: the listen is re-issued and a fresh print says what changed meanwhile.
    down = wait_for(lambda: _events(engine, "session_down", cid), 40, what="the drop seen after the outage")
    assert down[-1]["name"] == username
    wait_for(lambda: _view(engine).get("status") == "ok", 20, what="the view to be current again")
    engine.sim.restore_pppoe(username)
    wait_for(lambda: _events(engine, "session_up", cid), 10, what="its return")


def test_watch_is_one_flower_row_naming_the_router(engine: Engine, tmp_path: Any) -> None:
    import httpx

    base = start_flower(engine, tmp_path, "noc", "Fl0wer-ops-4k")
    old = wait_for(lambda: _watch_tokens(engine), 20, what="a watch")
    # Flower knows tasks from the events it saw: restart the watch under its eyes.
    watch_lifecycle.request_stop(engine.redis, ROUTER_ID, "restart for flower")
    wait_for(lambda: _watch_tokens(engine) and _watch_tokens(engine) != old, 20, what="a new watch")

    def listed() -> dict[str, Any] | None:
        response = httpx.get(
            f"{base}/api/tasks", params={"search": "sim-router"}, auth=("noc", "Fl0wer-ops-4k")
        )
        rows = [
            t
            for t in response.json().values()
            if t["name"] == "tasks.watch.watch" and t["state"] == "STARTED"
        ]
        return rows[0] if len(rows) == 1 else None

    row = wait_for(listed, 15, what="flower to list the running watch")
    assert ROUTER_ID in row["kwargs"] and "sim-router" in row["kwargs"]
    assert row["uuid"].startswith(f"watch-{ROUTER_ID}-")
