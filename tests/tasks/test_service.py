"""tasks.service: start/stop/status as the web layer calls them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update

from harness.polling import wait_for
from harness.seed import apply_env
from harness.workers import CeleryProcess
from models import Customer, MonitorSession
from models.resolution import CustomerNotActive, CustomerNotFound, InvalidCustomerId
from tasks import runtime, service, sessions
from tasks.lifecycle import request_stop as set_stop_key
from tests.tasks.engine import Engine
from tests.tasks.monitors import live_tokens, session_row, start_monitor, token
from tests.tasks.streams import customer_entries, matches, wait_entry
from tests.tasks.threads import in_threads

CAP = 5


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=10, hotspot=0, static=1, MAX_CONCURRENT_MONITORS=str(CAP))
    eng.start_worker("default", concurrency=2, name="control")
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def monitors_worker(engine: Engine) -> CeleryProcess:
    return engine.start_worker("monitors", concurrency=16, name="mon")


def _open_rows(customer_id: str) -> int:
    with sessions.db() as s:
        return s.execute(
            select(func.count())
            .select_from(MonitorSession)
            .where(
                MonitorSession.customer_id == uuid.UUID(customer_id),
                MonitorSession.desired_state == "running",
            )
        ).scalar_one()


def _rows(customer_id: str) -> int:
    with sessions.db() as s:
        return s.execute(
            select(func.count())
            .select_from(MonitorSession)
            .where(MonitorSession.customer_id == uuid.UUID(customer_id))
        ).scalar_one()


# -- before any monitors worker runs ----------------------------------------------------------


def test_service_stop_before_task_starts_frees_slot_and_task_never_produces(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    info = service.start(cid)
    assert token(info.session_id, 1) in live_tokens()
    service.stop(cid, requested_by="ops")
    # Nobody ran it, so stop() finished it: slot back at once, row closed, event out.
    assert token(info.session_id, 1) not in live_tokens()
    row = session_row(info.session_id)
    assert (row.desired_state, row.actual_state, row.stop_reason) == ("stopped", "stopped", "stopped by ops")
    assert [e["type"] for e in customer_entries(engine.redis, cid)] == ["stopped"]
    # The revoke broadcast reached no monitors worker; the message is still queued.
    late = engine.start_worker("monitors", concurrency=2, name="late")
    wait_for(
        lambda: f"monitor-{info.session_id}-1] succeeded" in late.log(),
        10.0,
        what="the late task to run and return",
    )
    assert "'not-wanted'" in late.log()
    assert [e["type"] for e in customer_entries(engine.redis, cid)] == ["stopped"]
    late.stop()


def test_service_start_waits_for_no_task_result(engine: Engine) -> None:
    # Monitors return nothing worth keeping. A result subscription per start is two round
    # trips for nothing in the web process and, when Redis is gone by the time the result
    # object is collected, 20 reconnect attempts a second apart on whatever thread collects it.
    cid = engine.customer_id(engine.usernames("pppoe")[1])
    marker = f"seen-{uuid.uuid4()}"
    commands: list[str] = []
    with engine.redis.monitor() as monitor:
        info = service.start(cid)
        engine.redis.echo(marker)
        while marker not in (command := monitor.next_command()["command"]):
            commands.append(command)
    assert info.task_id
    assert [c for c in commands if info.task_id in c and "SUBSCRIBE" in c.upper()] == []
    assert any(info.task_id in c for c in commands), "the start sent its task"
    service.stop(cid, requested_by="test")


# -- with a monitors worker ------------------------------------------------------------------


def test_service_fifty_concurrent_starts_for_one_customer_make_one_session(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[1])
    before = _rows(cid)
    results = in_threads(50, lambda i: service.start(cid, requested_by=f"caller-{i}"))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert len({r.session_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert _rows(cid) - before == 1 and _open_rows(cid) == 1
    session_id = results[0].session_id
    wait_entry(engine.redis, cid, lambda e: e["type"] == "traffic", 5.0, "samples")
    assert [t for t in live_tokens() if t.startswith(session_id)] == [f"{session_id}:1"]
    started = [e for e in customer_entries(engine.redis, cid) if e["type"] == "started"]
    assert len(started) == 1
    service.stop(cid)
    wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 5.0, "stopped")


def test_service_n_plus_one_concurrent_starts_with_cap_n_start_exactly_n(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    wait_for(lambda: not live_tokens(), 5.0, what="no slot in use")
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[2 : 2 + CAP + 1]]
    results = in_threads(len(ids), lambda i: service.start(ids[i]))
    started = [r for r in results if isinstance(r, service.SessionInfo)]
    refused = [r for r in results if isinstance(r, service.CapacityExceeded)]
    assert len(started) == CAP and len(refused) == 1, results
    assert (refused[0].cap, refused[0].in_use, refused[0].scope) == (CAP, CAP, "global")
    assert len(live_tokens()) == CAP
    # Nothing half-started for the refused customer: no open row, no lease, no task.
    loser = ids[results.index(refused[0])]
    assert _open_rows(loser) == 0
    assert sessions.open_for_customer(loser) is None
    status = service.status()
    assert (status["monitor_count"], status["slots_available"]) == (CAP, 0)
    # A stopped slot is reusable at once.
    service.stop(started[0].customer_id)
    wait_for(lambda: len(live_tokens()) == CAP - 1, 3.0, what="one slot free")
    again = service.start(loser)
    assert again.created
    for cid in [r.customer_id for r in started[1:]] + [loser]:
        service.stop(cid)
    wait_for(lambda: not live_tokens(), 5.0, what="all slots free")


def test_service_stop_key_alone_stops_monitor_when_revoke_is_lost(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[8])
    info = start_monitor(engine, cid, timeout=5.0)
    # What stop() does minus the revoke broadcast (as if no worker heard it).
    sessions.request_stop(info.session_id, "stop key only")
    set_stop_key(runtime.current().redis, info.session_id, "stop key only")
    stopped = wait_entry(
        engine.redis, cid, lambda e: e["type"] == "stopped", 2.0, "stopped within two seconds"
    )
    assert stopped["reason"] == "stop key only"
    assert f"revoked: monitor-{info.session_id}-1" not in monitors_worker.log()
    wait_for(lambda: token(info.session_id, 1) not in live_tokens(), 2.0, what="slot released")


def test_service_status_has_seed_shape_and_per_monitor_details(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    username = engine.usernames("pppoe")[9]
    cid = engine.customer_id(username)
    info = start_monitor(engine, cid, requested_by="noc", timeout=5.0)
    status = service.status()
    assert {"active_monitors", "monitor_count", "max_concurrent", "slots_available"} <= set(status)
    assert status["active_monitors"] == [cid]
    assert (status["monitor_count"], status["max_concurrent"]) == (1, CAP)
    assert status["slots_available"] == CAP - 1
    [detail] = status["monitors"]
    assert detail["session_id"] == info.session_id and detail["username"] == username
    assert detail["actual_state"] == "running" and detail["live"]
    assert detail["requested_by"] == "noc" and 0 < detail["lease_expires_in"] <= 3
    assert "password" not in str(status)
    service.stop(cid)
    with pytest.raises(service.NotMonitored):
        service.stop(cid)
    wait_for(lambda: not live_tokens(), 3.0, what="slot released")


def test_service_start_refuses_clearly_and_creates_nothing(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    with pytest.raises(InvalidCustomerId):
        service.start("not-a-uuid")
    with pytest.raises(CustomerNotFound):
        service.start(str(uuid.uuid4()))
    cid = engine.customer_id(engine.usernames("static_ip")[0])
    with sessions.db() as s:
        s.execute(update(Customer).where(Customer.id == uuid.UUID(cid)).values(status="suspended"))
    with pytest.raises(CustomerNotActive, match="suspended"):
        service.start(cid)
    assert _rows(cid) == 0
    apply_env({"ENABLE_TRAFFIC_MONITOR": "false"})
    try:
        with pytest.raises(service.MonitoringDisabled, match="ENABLE_TRAFFIC_MONITOR"):
            service.start(engine.customer_id(engine.usernames("pppoe")[0]))
    finally:
        apply_env({"ENABLE_TRAFFIC_MONITOR": "true"})
    assert not live_tokens()


def test_service_per_router_cap_refuses_with_router_scope(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    from models import Router

    with sessions.db() as s:
        s.execute(update(Router).where(Router.id == "sim-1").values(max_monitors=1))
    try:
        first = engine.customer_id(engine.usernames("pppoe")[1])
        second = engine.customer_id(engine.usernames("pppoe")[2])
        service.start(first)
        with pytest.raises(service.CapacityExceeded) as refused:
            service.start(second)
        assert (refused.value.scope, refused.value.cap, refused.value.in_use) == ("router", 1, 1)
        assert sessions.open_for_customer(second) is None
        service.stop(first)
    finally:
        with sessions.db() as s:
            s.execute(update(Router).where(Router.id == "sim-1").values(max_monitors=None))
    wait_for(lambda: not live_tokens(), 3.0, what="slot released")


def test_service_start_right_after_stop_takes_over_without_overlap(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[3])
    old = start_monitor(engine, cid, timeout=5.0)
    service.stop(cid)
    new = service.start(cid)  # the old monitor may still be winding down
    assert new.created and new.session_id != old.session_id
    wait_entry(
        engine.redis,
        cid,
        lambda e: e["type"] == "traffic" and e["session_id"] == new.session_id,
        5.0,
        "samples of the new session",
    )
    entries = customer_entries(engine.redis, cid)
    first_new = min(i for i, e in enumerate(entries) if e["session_id"] == new.session_id)
    assert all(e["session_id"] == new.session_id for e in entries[first_new:] if e["type"] == "traffic")
    wait_for(
        lambda: session_row(old.session_id).actual_state == "stopped", 5.0, what="the old session closed"
    )
    service.stop(cid)
    wait_for(lambda: not live_tokens(), 3.0, what="slot released")


# -- bulk start: the same rules per customer, a few round trips for all -------------------------


def test_service_start_many_gives_each_customer_its_own_result_like_single_starts(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    wait_for(lambda: not live_tokens(), 5.0, what="no slot in use")
    pppoe = [engine.customer_id(u) for u in engine.usernames("pppoe")]
    already = service.start(pppoe[4])
    suspended = engine.customer_id(engine.usernames("static_ip")[0])  # suspended by an earlier test
    with sessions.db() as s:
        s.execute(update(Customer).where(Customer.id == uuid.UUID(suspended)).values(status="suspended"))
    missing = str(uuid.uuid4())
    # Cap 5: one slot held by `already`, so 4 of the 6 new ones start, in order.
    ask = [pppoe[4], "not-a-uuid", missing, suspended, *pppoe[5:10], pppoe[5]]
    results = service.start_many(ask, requested_by="bulk")
    assert [r.status for r in results] == [
        "already",
        "refused",
        "refused",
        "refused",
        "started",
        "started",
        "started",
        "started",
        "refused",
        "started",  # a repeated id gets the same result
    ]
    assert results[0].info is not None and results[0].info.session_id == already.session_id
    assert isinstance(results[1].error, InvalidCustomerId)
    assert isinstance(results[2].error, CustomerNotFound)
    assert isinstance(results[3].error, CustomerNotActive)
    capacity = results[8].error
    assert isinstance(capacity, service.CapacityExceeded)
    assert (capacity.scope, capacity.cap, capacity.in_use) == ("global", CAP, CAP)
    # Nothing half-started for the refused: no open row, no lease.
    assert _open_rows(pppoe[9]) == 0 and _rows(suspended) == 0
    started = [r.info for r in results[4:8] if r.info is not None]
    assert {i.requested_by for i in started} == {"bulk"} and all(i.created for i in started)
    assert live_tokens() == {token(already.session_id, 1)} | {token(i.session_id, 1) for i in started}
    # One Celery task per monitor, each producing under its own lease, one `started` each.
    for info in started:
        wait_entry(
            engine.redis,
            info.customer_id,
            matches(type="traffic", session_id=info.session_id),
            10.0,
            "samples of a bulk-started monitor",
        )
        entries = customer_entries(engine.redis, info.customer_id)
        assert [e["type"] for e in entries if e["session_id"] == info.session_id].count("started") == 1
    for cid in [pppoe[4], *pppoe[5:9]]:
        service.stop(cid)
    with sessions.db() as s:
        s.execute(update(Customer).where(Customer.id == uuid.UUID(suspended)).values(status="active"))
    wait_for(lambda: not live_tokens(), 5.0, what="all slots free")


def test_service_start_many_racing_single_starts_makes_one_session_per_customer(
    engine: Engine, monitors_worker: CeleryProcess
) -> None:
    wait_for(lambda: not live_tokens(), 5.0, what="no slot in use")
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[:3]]
    results = in_threads(
        8,
        lambda i: service.start_many(ids) if i % 2 else service.start(ids[i % 3], requested_by=f"single-{i}"),
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    for cid in ids:
        assert _open_rows(cid) == 1
        seen = {r.session_id for r in results if isinstance(r, service.SessionInfo) and r.customer_id == cid}
        seen |= {
            item.info.session_id
            for r in results
            if isinstance(r, list)
            for item in r
            if item.customer_id == cid and item.info is not None
        }
        assert len(seen) == 1, seen  # everyone was given the one session
    assert len(live_tokens()) == 3
    for cid in ids:
        service.stop(cid)
    wait_for(lambda: not live_tokens(), 5.0, what="all slots free")
