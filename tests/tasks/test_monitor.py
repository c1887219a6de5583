"""The monitor task end to end: service.start -> worker -> router -> streams."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from harness.polling import wait_for
from harness.seed import ROUTER_PASSWORD, parse_ts
from tasks import service
from tasks.lifecycle import REVOKED
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor, start_monitors, wait_resumed
from tests.tasks.streams import customer_entries, wait_entry


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=12, hotspot=2, static=2)
    # DEBUG on purpose: librouteros logs the login words at DEBUG (invariant 6).
    eng.start_worker("monitors", concurrency=16, loglevel="DEBUG")
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


def _first(eng: Engine, customer_id: str, kind: str, timeout: float, **match: object) -> dict:
    return wait_entry(
        eng.redis,
        customer_id,
        lambda e: e["type"] == kind and all(e.get(k) == v for k, v in match.items()),
        timeout,
        f"a {kind} entry for {customer_id} {match or ''}",
    )


def test_monitor_pppoe_sample_reaches_stream_within_one_second(engine: Engine) -> None:
    username = engine.usernames("pppoe")[0]
    cid = engine.customer_id(username)
    started = time.time()
    sample = start_monitor(engine, cid, requested_by="test", timeout=5.0).first
    assert parse_ts(sample["timestamp"]) - started < 1.0, (sample, started)
    record = engine.customers[username]
    assert sample["customer_id"] == cid
    assert sample["username"] == username
    assert sample["customer_name"] == record["name"]
    assert sample["service_type"] == "pppoe"
    assert sample["interface"] == f"<pppoe-{record['pppoe_username']}>"
    # Server-side interface: the router transmits (tx) to the customer = download.
    assert sample["download_bps"] == int(sample["tx_bits_per_second"])
    assert sample["upload_bps"] == int(sample["rx_bits_per_second"])
    assert sample["package"] == record["package"]
    assert "pppoe_password" not in sample and record["pppoe_password"] not in str(sample)
    service.stop(cid, requested_by="test")


def _session(session_id: str):
    from tasks import sessions

    return sessions.get(session_id)


def _stop_and_wait(eng: Engine, cid: str, session_id: str) -> dict:
    service.stop(cid, requested_by="test")
    return _first(eng, cid, "stopped", 5.0, session_id=session_id)


@pytest.mark.parametrize("service_type", ["hotspot", "static_ip"])
def test_monitor_queue_target_samples_read_pairs_as_upload_download(
    engine: Engine, service_type: str
) -> None:
    username = engine.usernames(service_type)[0]
    cid = engine.customer_id(username)
    record = engine.customers[username]
    running = start_monitor(engine, cid, timeout=5.0)
    sample = running.first
    # The polled /queue/simple row's `rate` is "upload/download" from the target's view.
    expected_queue = record["target"]
    rows = [r for r in _router_queues(engine) if r["name"] == expected_queue]
    assert rows, f"simulator has no queue {expected_queue}"
    assert sample["service_type"] == service_type
    assert sample["interface"] == expected_queue  # the queue's name, also when found by address
    assert sample["upload_bps"] == int(sample["rx_bits_per_second"])
    assert sample["download_bps"] == int(sample["tx_bits_per_second"])
    assert sample["package"] == record["package"]
    _stop_and_wait(engine, cid, running.session_id)


def _router_queues(eng: Engine) -> list[dict[str, str]]:
    from routeros import RouterClient, RouterEndpoint

    with RouterClient(
        RouterEndpoint("127.0.0.1", eng.sim.port, "admin", ROUTER_PASSWORD, timeout=5)
    ) as client:
        return client.call("/queue/simple/print", proplist=["name", "target", "rate"])


def test_monitor_stop_ends_samples_within_one_second(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[1])
    info = start_monitor(engine, cid, timeout=5.0)
    asked = time.time()
    service.stop(cid, requested_by="alice")
    stopped = _first(engine, cid, "stopped", 5.0, session_id=info.session_id)
    assert parse_ts(stopped["timestamp"]) - asked < 1.0
    assert stopped["reason"] == "stopped by alice"
    row = wait_for(
        lambda: (r := _session(info.session_id)) and r.actual_state == "stopped" and r,
        5.0,
        what="the session row to be closed",
    )
    assert row.desired_state == "stopped" and row.stop_reason == "stopped by alice"
    entries = customer_entries(engine.redis, cid)
    last = max(i for i, e in enumerate(entries) if e["type"] == "stopped")
    assert all(e["type"] != "traffic" for e in entries[last + 1 :])
    assert wait_for(lambda: service.status()["slots_in_use"] == 0, 5.0, what="slot freed")


def test_monitor_shares_one_router_connection_per_worker_process(engine: Engine) -> None:
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[2:8]]
    before = engine.sim.stats()["logins"]
    infos = list(start_monitors(engine, ids, timeout=5.0).values())
    # One worker process, six monitors: one API session on the router (an earlier
    # test's own short-lived client may still be closing on the router side).
    wait_for(lambda: engine.sim.stats()["open_sessions"] == 1, 3.0, what="one API session on the router")
    assert engine.sim.stats()["logins"] - before <= 1
    for cid, info in zip(ids, infos):
        _stop_and_wait(engine, cid, info.session_id)


# The router's behaviour when the interface vanishes is UNVERIFIED (facts 3.3): a trap,
# a bare !done, silence, or rows of zeros (told from idle traffic by asking the router).
@pytest.mark.parametrize("mode", ["trap", "done", "stall", "zeros"])
def test_monitor_pppoe_drop_and_return_gives_events_then_samples(engine: Engine, mode: str) -> None:
    username = engine.usernames("pppoe")[{"trap": 8, "done": 6, "stall": 9, "zeros": 5}[mode]]
    cid = engine.customer_id(username)
    info = start_monitor(engine, cid, timeout=5.0)
    engine.sim.drop_pppoe(username, mode=mode)
    trouble = wait_entry(
        engine.redis,
        cid,
        lambda e: e["type"] in ("offline", "reconnecting") and e["session_id"] == info.session_id,
        10.0,
        "offline/reconnecting",
    )
    assert trouble["reason"]
    assert wait_for(
        lambda: (r := _session(info.session_id)) and r.actual_state in ("offline", "reconnecting"),
        5.0,
        what="the row to show the trouble",
    )
    # Slot kept while offline.
    assert any(m["session_id"] == info.session_id and m["live"] for m in service.status()["monitors"])
    engine.sim.restore_pppoe(username)
    wait_resumed(engine, cid, info.session_id, 20.0)
    _stop_and_wait(engine, cid, info.session_id)


def test_monitor_stalled_router_connection_reconnects_then_resumes(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[10])
    info = start_monitor(engine, cid, timeout=5.0)
    engine.sim.stall(True)
    try:
        wait_entry(
            engine.redis,
            cid,
            lambda e: e["type"] == "reconnecting" and e["session_id"] == info.session_id,
            15.0,
            "reconnecting",
        )
    finally:
        engine.sim.stall(False)
    wait_resumed(engine, cid, info.session_id, 30.0)
    _stop_and_wait(engine, cid, info.session_id)


def test_monitor_router_closing_connection_gives_reconnecting_then_resumed(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[7])
    info = start_monitor(engine, cid, timeout=5.0)
    engine.sim.close_connections()  # router reboot / link reset: FIN on every session
    _first(engine, cid, "reconnecting", 5.0, session_id=info.session_id)
    wait_resumed(engine, cid, info.session_id, 10.0)
    _stop_and_wait(engine, cid, info.session_id)


def test_monitor_stops_itself_at_max_duration(engine: Engine, monkeypatch) -> None:
    from settings import get_settings

    monkeypatch.setenv("MONITOR_MAX_DURATION", "2")
    get_settings.cache_clear()
    try:
        cid = engine.customer_id(engine.usernames("pppoe")[11])
        info = service.start(cid)
    finally:
        monkeypatch.setenv("MONITOR_MAX_DURATION", "600")
        get_settings.cache_clear()
    stopped = _first(engine, cid, "stopped", 6.0, session_id=info.session_id)
    assert stopped["reason"] == "max-duration"
    row = wait_for(
        lambda: (r := _session(info.session_id)) and r.actual_state == "stopped" and r, 5.0, what="row closed"
    )
    assert row.stop_reason == "max-duration"


def test_monitor_flower_style_revoke_with_terminate_still_stops_cooperatively(engine: Engine) -> None:
    from tasks import app

    cid = engine.customer_id(engine.usernames("pppoe")[0])
    info = start_monitor(engine, cid, timeout=5.0).info
    # What Flower's revoke button sends. The threads pool cannot kill a thread; the
    # revoked flag is set anyway and the loop sees it.
    app.control.revoke(info.task_id, terminate=True, signal="SIGTERM")
    stopped = _first(engine, cid, "stopped", 5.0, session_id=info.session_id)
    assert stopped["reason"] == REVOKED
    row = wait_for(
        lambda: (r := _session(info.session_id)) and r.actual_state == "stopped" and r, 5.0, what="row closed"
    )
    # Closed for good: a revoke is an operator's stop, the reconciler must not restart it.
    assert (row.desired_state, row.stop_reason) == ("stopped", REVOKED)


def test_monitor_secrets_never_reach_logs_or_streams(engine: Engine) -> None:
    from tasks.keys import COMBINED_STREAM

    secrets = {ROUTER_PASSWORD}
    for record in engine.customers.values():
        secrets |= {record[k] for k in ("pppoe_password", "hotspot_password") if record[k]}
    # Its own monitors, through the worker that logs at DEBUG (librouteros logs the login
    # words there): one per service type, from login to stop.
    for service_type in ("pppoe", "hotspot", "static_ip"):
        cid = engine.customer_id(engine.usernames(service_type)[-1])
        info = start_monitor(engine, cid, requested_by="secrets-test", timeout=5.0)
        _stop_and_wait(engine, cid, info.session_id)
    assert "Task tasks.monitor.monitor" in engine.logs()
    entries = str(engine.redis.xrange(COMBINED_STREAM))
    assert "traffic" in entries
    for secret in secrets:
        assert secret not in engine.logs()
        assert secret not in entries
