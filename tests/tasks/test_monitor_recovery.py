"""Crash recovery with real worker processes: kill -9, SIGTERM handover, Redis flush."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest

from harness.polling import wait_for
from harness.workers import CeleryProcess
from tasks import service, sessions
from tests.tasks.engine import Engine
from tests.tasks.monitors import (
    PeakSlots,
    live_tokens,
    open_session_row,
    start_monitor,
    start_monitors,
    token,
    wait_next_attempt,
)
from tests.tasks.streams import customer_entries, matches, wait_entry

CAP = 20
TTL = 3.0


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(
        pppoe=24, hotspot=0, static=0, MAX_CONCURRENT_MONITORS=str(CAP), MONITOR_LEASE_TTL=str(TTL)
    )
    eng.start_worker("default", concurrency=2, name="control")
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def first_worker(engine: Engine) -> CeleryProcess:
    return engine.start_worker("monitors", concurrency=8, name="wa")


def assert_single_producer(entries: list[dict]) -> None:
    """Per session, attempts follow one another: once a newer fence has written,
    an older one never writes again, and their sample times never overlap."""
    spans: dict[tuple[str, int], list[float]] = {}
    order: list[tuple[str, int]] = []
    for e in entries:
        if e["type"] != "traffic":
            continue
        key = (e["session_id"], e["fence"])
        if key not in spans:
            spans[key] = []
            order.append(key)
        elif order[-1] != key:
            raise AssertionError(f"producer {key} wrote again after {order[-1]}: interleaving")
        spans[key].append(e["id"])
    for older, newer in zip(order, order[1:]):
        assert max(spans[older]) < min(spans[newer])


def _current_attempt(session_id: str) -> int:
    row = sessions.get(session_id)
    assert row is not None
    return row.attempt


def _at_attempt(session_id: str, attempt: int) -> Callable[[], bool]:
    """A wait_for condition: the session's row is at `attempt`."""
    return lambda: _current_attempt(session_id) == attempt


def test_monitor_kill9_slot_back_within_ttl_and_resumes_elsewhere(
    engine: Engine, first_worker: CeleryProcess
) -> None:
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[:3]]
    infos = list(start_monitors(engine, ids, timeout=5.0).values())
    second = engine.start_worker("monitors", concurrency=8, name="wb")
    old_tokens = {token(i.session_id, 1) for i in infos}
    assert old_tokens <= live_tokens()

    first_worker.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first_worker.wait_exit(5)
    # Slots: the dead owner's leases are gone within the TTL (nothing renews them).
    wait_for(lambda: not (old_tokens & live_tokens()), TTL + 0.5, what="the killed worker's slots to be free")
    assert time.monotonic() - killed_at <= TTL + 0.5
    # The reconciler restarts each session as attempt 2, on the surviving worker.
    for cid, info in zip(ids, infos):
        wait_next_attempt(engine, info, 15.0)
        assert _current_attempt(info.session_id) == 2
        assert_single_producer(customer_entries(engine.redis, cid))
    assert all(f"monitor-{i.session_id}-2" in second.log() for i in infos)
    assert len(live_tokens()) == 3


def test_monitor_sigterm_loops_exit_fast_and_hand_over(engine: Engine) -> None:
    running = [p for p in engine.processes if p.name == "wb" and p.alive()]
    assert running, "needs the worker of the previous test"
    leaving = running[0]
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[:3]]
    rows = [open_session_row(cid) for cid in ids]
    assert all(r.attempt == 2 for r in rows)
    engine.start_worker("monitors", concurrency=48, name="wc")

    leaving.signal(signal.SIGTERM)
    # Warm shutdown waits for running tasks: it only ends this fast because every
    # monitor loop saw the shutdown and returned.
    leaving.wait_exit(5)
    assert leaving.log().count("ended: worker-shutdown") == 3
    for cid, row in zip(ids, rows):
        handover = wait_entry(
            engine.redis,
            cid,
            matches(type="reconnecting", session_id=str(row.id)),
            2.0,
            "handover event",
        )
        assert "handing over" in handover["reason"]
        wait_for(_at_attempt(str(row.id), 3), 10.0, what="a third attempt")
        wait_entry(
            engine.redis,
            cid,
            matches(type="started", reason="attempt 3"),
            10.0,
            "attempt 3 started",
        )
        assert_single_producer(customer_entries(engine.redis, cid))
    for cid in ids:
        service.stop(cid)
    wait_for(lambda: not live_tokens(), 5.0, what="all slots free")


def test_monitor_redis_flush_recovers_without_duplicates_or_overshoot(engine: Engine) -> None:
    ids = [engine.customer_id(u) for u in engine.usernames("pppoe")[3 : 3 + CAP]]
    infos = list(start_monitors(engine, ids).values())
    with PeakSlots(engine.env["REDIS_URL"]) as slots:
        engine.redis.flushdb()
        for cid, info in zip(ids, infos):
            wait_entry(
                engine.redis,
                cid,
                matches(type="traffic", session_id=info.session_id),
                20.0,
                "samples after the flush",
            )
    assert slots.peak <= CAP
    assert len(live_tokens()) == CAP
    for cid, info in zip(ids, infos):
        entries = customer_entries(engine.redis, cid)
        fences = {e["fence"] for e in entries if e["type"] == "traffic"}
        # The flush wiped the streams: only the one restarted attempt writes now.
        assert len(fences) == 1, (cid, fences)
        assert _current_attempt(info.session_id) == 2
    assert service.status()["monitor_count"] == CAP
    for cid in ids:
        service.stop(cid)
    wait_for(lambda: not live_tokens(), 5.0, what="all slots free")


def test_monitor_lost_owner_key_fences_out_producer_and_reconciler_takes_over(engine: Engine) -> None:
    from tasks import keys

    cid = engine.customer_id(engine.usernames("pppoe")[23])
    info = start_monitor(engine, cid, timeout=5.0)
    engine.redis.delete(keys.customer_owner(cid))  # e.g. evicted or deleted by hand
    # The old attempt's next publish is refused; it stops; attempt 2 takes over.
    wait_for(lambda: _current_attempt(info.session_id) == 2, 10.0, what="attempt 2")
    wait_entry(
        engine.redis,
        cid,
        lambda e: e["type"] == "started" and e["reason"] == "attempt 2",
        10.0,
        "attempt 2 started",
    )
    wait_next_attempt(engine, info, 5.0)
    assert_single_producer(customer_entries(engine.redis, cid))
    service.stop(cid)
    wait_for(lambda: not live_tokens(), 5.0, what="all slots free")
