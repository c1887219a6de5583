"""Alert evaluation with real processes: the simulator drives customers (saturate,
drop_pppoe), the router watch and the monitors evaluate, the alerts table decides, the
alerts stream and a real HTTP receiver get the events."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from models.enums import AlertState
from tasks import keys, service, watch_lifecycle
from tests.tasks.alerting import add_rule, clear, download_plan, events, rows, wait_event
from tests.tasks.engine import Engine
from tests.tasks.receiver import Receiver, add_webhook
from tests.web.local import LOCAL_URL
from web.app import create_app

INTERVAL = 1.0
REFRESH = 1.0
RESOLVE_S = 3.0
ALERTS_ENV = {
    "ROUTER_WATCH": "true",
    "ROUTER_WATCH_INTERVAL": str(INTERVAL),
    "ALERT_RULES_REFRESH": str(REFRESH),
    "ALERT_RESOLVE_S": str(RESOLVE_S),
    "ALERT_WEBHOOK_TIMEOUT": "1",
    "ALERT_DELIVERY_INITIAL_DELAY": "0.2",
    "ALERT_DELIVERY_MAX_DELAY": "0.5",
    "MONITOR_PING": "true",
}


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=6, hotspot=1, static=1, **ALERTS_ENV)
    eng.start_worker("default", concurrency=2, name="control")
    eng.start_worker("monitors", concurrency=8, name="monitors")
    eng.start_worker("alerts", concurrency=2, name="alerts")
    eng.start_beat()
    wait_for(lambda: engine_watching(eng), 30, what="the router watch to publish its view", step=0.1)
    yield eng


def engine_watching(eng: Engine) -> bool:
    return bool(eng.redis.hget(keys.router_view(ROUTER_ID), "id"))


@pytest.fixture
def receiver(engine: Engine) -> Iterator[Receiver]:
    clear(engine.redis)
    r = Receiver().start()
    add_webhook("test hook", f"{r.url}/hook")
    yield r
    r.stop()
    clear(engine.redis)


def _deadline(for_s: float) -> float:
    """Y + one cycle, plus what the test's own set-up adds: the rule reaching the
    evaluators (ALERT_RULES_REFRESH) and the simulator's saturation starting (next second)."""
    return for_s + INTERVAL + REFRESH + 1.0 + 2.0


def test_alerts_utilization_fires_within_y_plus_a_cycle_and_resolves(
    engine: Engine, receiver: Receiver
) -> None:
    user = engine.usernames("pppoe")[0]
    customer_id = engine.customer_id(user)
    for_s = 3
    rule_id = add_rule(
        "test util",
        "utilization",
        {"direction": "download", "threshold_pct": 90, "for_s": for_s},
        scope=f"customer:{customer_id}",
    )
    time.sleep(REFRESH)  # the rule reaches the watch (the deadline below counts from the traffic)
    engine.sim.saturate(user, 1.0)
    started = time.monotonic()
    try:
        fired = wait_event(engine.redis, rule_id, "alert_firing", _deadline(for_s) + 5, "the alert to fire")
        took = time.monotonic() - started
        assert took >= for_s - 1  # hysteresis: it held for for_s first
        [row] = rows(rule_id)
        assert row.state is AlertState.FIRING and row.resolved_at is None
        assert fired["alert_id"] == str(row.id) and fired["customer_id"] == customer_id
        assert fired["subject"] == f"customer:{customer_id}" and fired["router"] == ROUTER_ID
        assert fired["value"] >= 90 and fired["threshold"] == 90 and "% of plan" in fired["summary"]
        got = wait_for(lambda: receiver.accepted, 15, what="the webhook to receive the firing")
        body = receiver.received(got[0])[0].json()
        assert body["event"] == "alert_firing" and body["alert_id"] == str(row.id)
        assert body["subject"]["id"] == customer_id and body["rule"]["id"] == rule_id
    finally:
        engine.sim.unsaturate(user)
    resolved = wait_event(engine.redis, rule_id, "alert_resolved", RESOLVE_S + 15, "the alert to resolve")
    [row] = rows(rule_id)
    assert row.state is AlertState.RESOLVED and row.resolved_at is not None
    assert resolved["alert_id"] == str(row.id) and resolved["resolved_at"] is not None
    wait_for(lambda: len(receiver.accepted) == 2, 15, what="the webhook to receive the resolution")
    # One event each: nothing fired twice while it held.
    assert [e["type"] for e in events(engine.redis, rule_id)] == ["alert_firing", "alert_resolved"]


def test_alerts_acknowledge_via_rest_emits_once_and_is_idempotent(engine: Engine, receiver: Receiver) -> None:
    user = engine.usernames("pppoe")[1]
    rule_id = add_rule(
        "test ack",
        "utilization",
        {"direction": "download", "threshold_pct": 90, "for_s": 1},
        scope=f"customer:{engine.customer_id(user)}",
    )
    engine.sim.saturate(user, 1.0)
    try:
        fired = wait_event(engine.redis, rule_id, "alert_firing", _deadline(1) + 5, "the alert to fire")
        with TestClient(create_app(), base_url=LOCAL_URL) as client:
            listed = client.get("/api/alerts").json()
            assert [a["id"] for a in listed["alerts"]] == [fired["alert_id"]] and listed["total"] == 1
            assert listed["alerts"][0]["rule_name"] == "test ack" and listed["alerts"][0]["username"] == user
            first = client.post(f"/api/alerts/{fired['alert_id']}/acknowledge")
            second = client.post(f"/api/alerts/{fired['alert_id']}/acknowledge")
            assert first.status_code == second.status_code == 200
            assert first.json()["alert"] == second.json()["alert"]
            assert first.json()["alert"]["acknowledged_by"] == "api"
            assert first.json()["alert"]["acknowledged_at"] is not None
            missing = client.post("/api/alerts/00000000-0000-4000-8000-000000000000/acknowledge")
            assert missing.status_code == 404 and missing.json()["code"] == "alert_not_found"
            bad = client.get("/api/alerts", params={"state": "closed"})
            assert bad.status_code == 400 and bad.json()["parameter"] == "state"
        acks = events(engine.redis, rule_id, "alert_acknowledged")
        assert len(acks) == 1 and acks[0]["acknowledged_by"] == "api"
        wait_for(lambda: len(receiver.accepted) == 2, 15, what="the webhook to get firing and acknowledged")
        kinds = sorted(r.json()["event"] for r in receiver.received())
        assert kinds == ["alert_acknowledged", "alert_firing"]
    finally:
        engine.sim.unsaturate(user)


def test_alerts_session_flaps_fire_the_flap_rule(engine: Engine, receiver: Receiver) -> None:
    user = engine.usernames("pppoe")[2]
    customer_id = engine.customer_id(user)
    rule_id = add_rule("test flaps", "session_flaps", {"count": 3, "window_min": 5}, scope="all")
    time.sleep(REFRESH + INTERVAL)
    view_id = engine.redis.hget(keys.router_view(ROUTER_ID), "id")
    for _ in range(3):
        engine.sim.drop_pppoe(user)
        wait_for(lambda: _session_events(engine, customer_id, "session_down"), 10, what="session_down")
        engine.sim.restore_pppoe(user)
        wait_for(lambda: _session_events(engine, customer_id, "session_up"), 10, what="session_up")
        engine.redis.delete(keys.router_stream(ROUTER_ID))  # count each drop afresh
    assert view_id is not None
    fired = wait_event(engine.redis, rule_id, "alert_firing", 10, "the flap rule to fire")
    assert fired["customer_id"] == customer_id and fired["value"] == 3.0 and fired["threshold"] == 3.0
    assert len(rows(rule_id)) == 1


def _session_events(engine: Engine, customer_id: str, kind: str) -> bool:
    from tests.tasks.streams import decoded

    entries = decoded(engine.redis.xrange(keys.router_stream(ROUTER_ID)))
    return any(e["type"] == kind and e.get("customer_id") == customer_id for e in entries)


def test_alerts_router_total_fires_for_the_router(engine: Engine, receiver: Receiver) -> None:
    users = engine.usernames("pppoe")[3:5]
    for user in users:
        engine.sim.saturate(user, 1.0)
    try:
        # A threshold the saturated pair passes and the quiet router does not: 80 % of their plans.
        plans = sum(download_plan(engine.customer_id(u)) for u in users)
        rule_id = add_rule(
            "test total",
            "router_total",
            {"threshold_bps": int(plans * 0.8), "for_s": 2},
            scope=f"router:{ROUTER_ID}",
        )
        fired = wait_event(
            engine.redis, rule_id, "alert_firing", _deadline(2) + 5, "the router total to fire"
        )
        assert fired["subject"] == f"router:{ROUTER_ID}" and fired["customer_id"] is None
        assert fired["value"] >= plans * 0.8
    finally:
        for user in users:
            engine.sim.unsaturate(user)
    wait_event(engine.redis, rule_id, "alert_resolved", RESOLVE_S + 15, "the router total to resolve")


def test_alerts_rtt_of_a_saturated_pinged_customer(engine: Engine, receiver: Receiver) -> None:
    user = engine.usernames("pppoe")[5]
    customer_id = engine.customer_id(user)
    service.start(customer_id, requested_by="test")
    try:
        rule_id = add_rule("test rtt", "rtt", {"p95_ms": 60, "window_s": 10}, scope=f"customer:{customer_id}")
        engine.sim.saturate(user, 1.0)
        fired = wait_event(engine.redis, rule_id, "alert_firing", 40, "the rtt rule to fire")
        assert fired["customer_id"] == customer_id and fired["value"] >= 60
        assert len(rows(rule_id)) == 1
    finally:
        engine.sim.unsaturate(user)
        service.stop(customer_id, requested_by="test")


def test_alerts_watch_offline_fires_when_the_watch_stops_and_a_restart_does_not_refire(
    engine: Engine, receiver: Receiver
) -> None:
    user = engine.usernames("pppoe")[0]
    util_id = add_rule(
        "test util restart",
        "utilization",
        {"direction": "download", "threshold_pct": 90, "for_s": 1},
        scope=f"customer:{engine.customer_id(user)}",
    )
    engine.sim.saturate(user, 1.0)
    try:
        wait_event(engine.redis, util_id, "alert_firing", _deadline(1) + 5, "the utilization alert")
        offline_id = add_rule("test offline", "watch_offline", {"for_s": 2}, scope="all")
        # Kill the watch's worker: no frame, no lease; the reconciler notices.
        monitors = next(p for p in engine.processes if p.name == "monitors")
        monitors.signal(signal.SIGKILL)
        monitors.wait_exit(10.0)
        fired = wait_event(engine.redis, offline_id, "alert_firing", 30, "watch_offline to fire")
        assert fired["subject"] == f"router:{ROUTER_ID}"
        # A watch on a new worker: it loads the open alert and does not fire it again.
        engine.start_worker("monitors", concurrency=8, name="monitors-2")
        wait_event(engine.redis, offline_id, "alert_resolved", 40, "watch_offline to resolve")
        wait_for(lambda: watch_lifecycle.semaphore(engine.redis).holders(), 10, what="the new watch")
        time.sleep(3 * INTERVAL)
        assert len(events(engine.redis, util_id, "alert_firing")) == 1
        assert len([r for r in rows(util_id) if r.resolved_at is None]) == 1
    finally:
        engine.sim.unsaturate(user)
