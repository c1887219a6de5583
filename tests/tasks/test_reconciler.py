"""The reconciler pass, run in this process against real Redis and PostgreSQL.

No worker consumes `monitors` here, so what the reconciler enqueues stays in the
broker list where the test can read it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text, update

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from models import ActualState, MonitorSession
from tasks import keys, runtime, service, sessions
from tasks.reconciler import Reconciler, recently_touched
from tests.tasks.engine import Engine
from tests.tasks.monitors import live_tokens, open_session_row, session_row, token
from tests.tasks.streams import customer_entries, redis_ms
from tests.tasks.threads import in_threads

CAP = 4


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    yield engine_factory(pppoe=8, hotspot=0, static=0, MAX_CONCURRENT_MONITORS=str(CAP))


@pytest.fixture(autouse=True)
def clean(engine: Engine) -> Iterator[None]:
    yield
    with sessions.db() as s:
        s.execute(update(MonitorSession).values(desired_state="stopped", actual_state="stopped"))
    engine.redis.flushdb()


def _queued_task_ids(eng: Engine) -> list[str]:
    # Monitor messages wait in their router's queue (router affinity, tasks/affinity.py).
    queue = keys.router_queue(ROUTER_ID)
    return [json.loads(m)["headers"]["id"] for m in eng.redis.lrange(queue, 0, -1)]


def _crash(info: service.SessionInfo) -> None:
    """What a SIGKILL leaves behind once the TTL ran out: a row that says running, no lease."""
    row = session_row(info.session_id)
    runtime.current().semaphore.release(token(str(row.id), row.attempt), row.customer_id, row.router_id)
    sessions.set_state(row.id, row.attempt, ActualState.RUNNING)


def _reconcile_until(key: str, value: int, timeout: float = 3.0) -> dict[str, int]:
    """Run passes until their summed `key` reaches `value`; return the summed counters.

    Rows touched within GRACE_SECONDS are left alone, so early passes may skip some."""
    total: dict[str, int] = {}

    def one_pass() -> bool:
        for name, count in Reconciler().run().items():
            total[name] = total.get(name, 0) + count
        return total[key] >= value

    wait_for(one_pass, timeout, what=f"reconcile {key} >= {value}")
    return total


def test_reconciler_restarts_expired_session_as_next_attempt(engine: Engine) -> None:
    info = service.start(engine.customer_id(engine.usernames("pppoe")[0]))
    _crash(info)
    _reconcile_until("restarted", 1)
    row = session_row(info.session_id)
    assert row.attempt == 2 and row.desired_state == "running"
    assert token(info.session_id, 2) in live_tokens()
    assert f"monitor-{info.session_id}-2" in _queued_task_ids(engine)
    # The restarted attempt is live: further passes leave it alone.
    assert Reconciler().run()["restarted"] == 0
    assert session_row(info.session_id).attempt == 2


def test_reconciler_concurrent_passes_launch_one_attempt(engine: Engine) -> None:
    info = service.start(engine.customer_id(engine.usernames("pppoe")[1]))
    _crash(info)
    wait_for(
        lambda: not recently_touched(session_row(info.session_id), sessions.db_now()), 3.0, what="grace over"
    )
    results = in_threads(8, lambda i: Reconciler().run())
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(r["restarted"] for r in results) == 1
    assert session_row(info.session_id).attempt == 2
    assert _queued_task_ids(engine).count(f"monitor-{info.session_id}-2") == 1
    assert [t for t in live_tokens() if t.startswith(info.session_id)] == [f"{info.session_id}:2"]


def test_reconciler_after_flush_restarts_up_to_the_cap_only(engine: Engine) -> None:
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[2 : 2 + CAP]]
    infos = [service.start(cid) for cid in ids]
    extra = engine.customer_id(engine.usernames("pppoe")[2 + CAP])
    engine.redis.flushdb()  # Redis lost everything: leases, slots, queued messages
    # One more desired session than the cap (e.g. the cap was lowered meanwhile).
    with sessions.db() as s:
        s.add(
            MonitorSession(
                customer_id=uuid.UUID(extra),
                router_id="sim-1",
                desired_state="running",
                actual_state="running",
                attempt=1,
            )
        )
    summary = _reconcile_until("restarted", CAP)
    assert summary["restarted"] == CAP
    # Cap reached: the left-over session waits on every further pass.
    wait_for(
        lambda: Reconciler().run()["capacity_waits"] == 1,
        3.0,
        what="the left-over session to wait for a slot",
    )
    assert runtime.current().semaphore.in_use() == CAP
    assert len(_queued_task_ids(engine)) == CAP
    assert {session_row(i.session_id).attempt for i in infos} == {2}
    # The session left over waits, and starts as soon as a slot frees.
    service.stop(ids[0])
    assert Reconciler().run()["restarted"] == 1
    assert open_session_row(extra).attempt == 2
    assert runtime.current().semaphore.in_use() == CAP


def test_reconciler_stops_sessions_past_max_duration(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[6])
    info = service.start(cid)
    with sessions.db() as s:
        s.execute(
            text(
                "UPDATE monitor_sessions SET created_at = now() - interval '2 hours', "
                "max_duration_s = 3600 WHERE id = :id"
            ),
            {"id": info.session_id},
        )
    # Live lease: the monitor is asked to stop (it closes its own row).
    assert Reconciler().run()["expired"] == 1
    assert engine.redis.get(keys.session_stop(info.session_id)) == b"max-duration"
    assert session_row(info.session_id).desired_state == "stopped"
    # No live lease: the reconciler finishes it itself.
    _crash(info)
    _reconcile_until("closed", 1)
    row = session_row(info.session_id)
    assert (row.actual_state, row.stop_reason) == ("stopped", "max-duration")
    assert customer_entries(engine.redis, cid)[-1]["type"] == "stopped"


def test_reconciler_frees_expired_slots_and_stops_orphan_leases(engine: Engine) -> None:
    sem = runtime.current().semaphore
    sem.acquire("dead-session:1", str(uuid.uuid4()), "sim-1", global_limit=CAP, router_limit=None, ttl=0.2)
    wait_for(lambda: sem.in_use() == 0, 2.0, what="the lease to expire")
    assert engine.redis.zscore(keys.GLOBAL_SLOTS, "dead-session:1") is not None
    assert Reconciler().run()["freed"] == 1
    assert engine.redis.zscore(keys.GLOBAL_SLOTS, "dead-session:1") is None
    assert engine.redis.hget(keys.LEASES, "dead-session:1") is None
    orphan, customer = str(uuid.uuid4()), engine.customer_id(engine.usernames("pppoe")[7])
    sem.acquire(f"{orphan}:1", customer, "sim-1", global_limit=CAP, router_limit=None, ttl=30)
    assert Reconciler().run()["stop_keys"] == 1
    assert engine.redis.get(keys.session_stop(orphan)) == b"session closed"
    # A lease whose customer is gone (its rows went with it): the stop says why.
    gone = str(uuid.uuid4())
    sem.acquire(f"{gone}:1", str(uuid.uuid4()), "sim-1", global_limit=CAP, router_limit=None, ttl=30)
    Reconciler().run()
    assert engine.redis.get(keys.session_stop(gone)) == b"customer deleted"


def test_reconciler_suspended_customer_of_a_queued_session_is_stopped_with_reason(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[7])
    info = service.start(cid)  # reserved and queued: no monitors worker runs it here
    assert token(info.session_id, 1) in live_tokens()
    with sessions.db() as s:
        s.execute(text("UPDATE customers SET status = 'suspended' WHERE id = :id"), {"id": cid})
    try:
        assert Reconciler().run()["customer_stops"] == 1
        row = session_row(info.session_id)
        assert (row.desired_state, row.actual_state, row.stop_reason) == (
            "stopped",
            "stopped",
            "customer suspended",
        )
        assert token(info.session_id, 1) not in live_tokens()  # the slot is back at once
        last = customer_entries(engine.redis, cid)[-1]
        assert (last["type"], last["reason"]) == ("stopped", "customer suspended")
        assert Reconciler().run()["restarted"] == 0
    finally:
        with sessions.db() as s:
            s.execute(text("UPDATE customers SET status = 'active' WHERE id = :id"), {"id": cid})


def test_reconciler_backlog_of_messages_runs_one_pass_and_leaves_a_heartbeat(engine: Engine) -> None:
    from tasks.reconciler import reconcile

    engine.redis.delete(keys.RECONCILER_GATE)
    first, second = reconcile(), reconcile()  # two queued beat messages, run back to back
    assert set(first) >= {"restarted", "freed"} and second == {}
    heartbeat = engine.redis.get(keys.RECONCILER_LAST_RUN)
    assert heartbeat is not None
    beat_ms = int(heartbeat)
    assert 0 <= redis_ms(engine.redis) - beat_ms < 5000
