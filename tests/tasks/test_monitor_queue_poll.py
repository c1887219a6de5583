"""Queue monitors share their router's poll: 40 hotspot and static-IP monitors in a real
worker cost the router about one `/queue/simple/print` a second, not forty, and each
still gets its own samples; a queue that disappears is `offline` for its monitor alone
and comes back with `resumed`. Real worker and simulator (tasks/queue_poll.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from tasks import service
from tasks.queue_poll import COMMAND
from tests.tasks.engine import Engine
from tests.tasks.streams import customer_entries, matches, wait_entry

QUEUE_MONITORS = 40  # half hotspot (queues by name), half static IP (by target address)
WINDOW_SAMPLES = 5  # samples every monitor must get inside the counted window
NOT_FOUND = "queue not found (customer not logged in)"


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=2, hotspot=QUEUE_MONITORS // 2, static=QUEUE_MONITORS // 2)
    eng.start_worker("monitors", concurrency=QUEUE_MONITORS + 8)
    yield eng


def _traffic(eng: Engine, customer_id: str, session_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in customer_entries(eng.redis, customer_id)
        if e["type"] == "traffic" and e["session_id"] == session_id
    ]


def test_monitor_queue_poll_forty_monitors_cost_one_print_a_second(engine: Engine) -> None:
    ids = [engine.customer_id(u) for u in engine.usernames("hotspot") + engine.usernames("static_ip")]
    assert len(ids) == QUEUE_MONITORS
    started = {r.customer_id: r.info.session_id for r in service.start_many(ids) if r.info is not None}
    assert len(started) == QUEUE_MONITORS
    try:
        for cid, session_id in started.items():
            wait_entry(engine.redis, cid, matches(type="traffic", session_id=session_id), 15.0, "a sample")
        before = {cid: len(_traffic(engine, cid, sid)) for cid, sid in started.items()}
        engine.sim.reset_command_counts()
        began = time.monotonic()

        def every_monitor_sampled() -> bool:
            return all(
                len(_traffic(engine, cid, sid)) >= before[cid] + WINDOW_SAMPLES
                for cid, sid in started.items()
            )

        wait_for(every_monitor_sampled, WINDOW_SAMPLES * 3 + 10.0, what=f"{WINDOW_SAMPLES} samples each")
        commands = engine.sim.command_counts()
        window = time.monotonic() - began
        print(f"\n{QUEUE_MONITORS} queue monitors: {commands} in {window:.1f}s")
        # One print a cycle (the code before tasks/queue_poll.py sent one per monitor: 40
        # a second), and nothing else: every command the router received is counted.
        assert 1 <= commands.get(COMMAND, 0) <= 2 * window + 2, (commands, window)
        assert sum(commands.values()) <= 2 * window + 2, (commands, window)
        # Each monitor's samples are its own queue's, found by name or by target address.
        for cid, session_id in started.items():
            record = next(c for c in engine.customers.values() if c["id"] == cid)
            assert {e["interface"] for e in _traffic(engine, cid, session_id)} == {record["target"]}
    finally:
        for cid in started:
            service.stop(cid, requested_by="queue-poll-test")
        for cid, session_id in started.items():
            wait_entry(engine.redis, cid, matches(type="stopped", session_id=session_id), 10.0, "stopped")


def test_monitor_queue_poll_queue_gone_is_offline_for_its_monitor_then_resumes(engine: Engine) -> None:
    user = engine.usernames("hotspot")[0]
    vanishing, steady = engine.customer_id(user), engine.customer_id(engine.usernames("static_ip")[0])
    started = {
        cid: service.start(cid, requested_by="queue-poll-test").session_id for cid in (vanishing, steady)
    }
    gone, other = started[vanishing], started[steady]
    try:
        for cid, session_id in started.items():
            wait_entry(engine.redis, cid, matches(type="traffic", session_id=session_id), 15.0, "a sample")
        engine.sim.drop_hotspot(user)  # logged out: its dynamic queue goes with it
        offline = wait_entry(
            engine.redis, vanishing, matches(type="offline", session_id=gone), 10.0, "offline"
        )
        assert offline["reason"] == NOT_FOUND
        # The other monitor on the same poll goes on, untroubled.
        count = len(_traffic(engine, steady, other))
        wait_for(lambda: len(_traffic(engine, steady, other)) >= count + 3, 10.0, what="more samples")
        kinds = {e["type"] for e in customer_entries(engine.redis, steady) if e["session_id"] == other}
        assert kinds == {"started", "traffic"}, kinds
        engine.sim.restore_hotspot(user)
        resumed = wait_entry(
            engine.redis, vanishing, matches(type="resumed", session_id=gone), 20.0, "resumed"
        )
        wait_for(
            lambda: any(e["seq"] > resumed["seq"] for e in _traffic(engine, vanishing, gone)),
            5.0,
            what="samples after resumed",
        )
    finally:
        for cid, session_id in started.items():
            service.stop(cid, requested_by="queue-poll-test")
            wait_entry(engine.redis, cid, matches(type="stopped", session_id=session_id), 10.0, "stopped")
