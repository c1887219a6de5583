"""An API user whose group lacks the policy for our commands: the router answers
monitor-traffic and /queue/simple/print with `!trap =message=not enough permissions (9)`.
Real worker, beat and simulator (Simulator.deny_commands).

The slot policy (README, Router trouble keeps the slot; docs/architecture.md): the
monitor is `offline` with the router's words and retries on a long backoff while it
holds its slot; when the router still denies it after MONITOR_DENIED_STOP_AFTER the
session stops with that reason, so an operator sees why instead of a slot held forever.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from tasks import service
from tests.tasks.engine import Engine
from tests.tasks.monitors import live_tokens, session_row
from tests.tasks.streams import Predicate, matches, wait_entry

DENIED = ("/interface/monitor-traffic", "/queue/simple/print")
WORDS = "not enough permissions (9)"
STOP_AFTER = 8.0  # MONITOR_DENIED_STOP_AFTER for this module's processes
# Denied retries back off from 2-4 s doubling (tasks/monitor.py): within STOP_AFTER at
# most the first attempt and three retries (at >= 2, 4+2, 8+4... s) per monitor.
MAX_DENIED_PER_MONITOR = 4


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=6, hotspot=2, static=0, MONITOR_DENIED_STOP_AFTER=str(STOP_AFTER))
    eng.start_worker("monitors", concurrency=8)
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


@pytest.fixture(autouse=True)
def allowed_again(engine: Engine) -> Iterator[None]:
    yield
    engine.sim.deny_commands()


def _pair(eng: Engine, index: int) -> dict[str, str]:
    """A PPPoE (streamed) and a hotspot (polled) customer: customer id -> session id."""
    ids = [eng.customer_id(eng.usernames("pppoe")[index]), eng.customer_id(eng.usernames("hotspot")[index])]
    return {cid: service.start(cid, requested_by="permissions-test").session_id for cid in ids}


def _said(kind: str, session_id: str, words: str = "") -> Predicate:
    """An entry of `kind` for the session whose reason holds `words`."""

    def check(entry: dict[str, Any]) -> bool:
        reason = entry.get("reason") or ""
        return bool(entry["type"] == kind and entry["session_id"] == session_id and words in reason)

    return check


def _traffic_after(seq: int) -> Predicate:
    return lambda entry: bool(entry["type"] == "traffic" and entry["seq"] > seq)


def _wait_each(
    eng: Engine, sessions: dict[str, str], kind: str, timeout: float, words: str = ""
) -> dict[str, dict[str, Any]]:
    return {
        cid: wait_entry(eng.redis, cid, _said(kind, session_id, words), timeout, f"{kind} {words}".strip())
        for cid, session_id in sessions.items()
    }


def test_monitor_permission_denied_offline_with_router_words_then_resumes_when_granted(
    engine: Engine,
) -> None:
    sessions = _pair(engine, 0)
    _wait_each(engine, sessions, "traffic", 5.0)
    engine.sim.deny_commands(*DENIED)
    engine.sim.close_connections()  # running commands keep running: make the stream start again
    offline = _wait_each(engine, sessions, "offline", 10.0, WORDS)
    assert any("/interface/monitor-traffic" in e["reason"] for e in offline.values())
    assert any("/queue/simple/print" in e["reason"] for e in offline.values())
    # The slot is held while it waits for the policy.
    live = {m["session_id"] for m in service.status()["monitors"] if m["live"]}
    assert set(sessions.values()) <= live
    engine.sim.deny_commands()  # the admin adds the read policy to the API user's group
    resumed = _wait_each(engine, sessions, "resumed", STOP_AFTER)
    for cid, event in resumed.items():
        wait_entry(engine.redis, cid, _traffic_after(event["seq"]), 5.0, "samples after resumed")
    for cid, session_id in sessions.items():
        service.stop(cid)
        wait_entry(engine.redis, cid, matches(type="stopped", session_id=session_id), 5.0, "stopped")


def test_monitor_permission_denied_past_the_limit_stops_with_reason_and_frees_slot(engine: Engine) -> None:
    engine.sim.deny_commands(*DENIED)
    before = engine.sim.stats()["denied_commands"]
    began = time.monotonic()
    sessions = _pair(engine, 1)
    _wait_each(engine, sessions, "offline", 10.0, WORDS)
    stopped = _wait_each(engine, sessions, "stopped", STOP_AFTER + 5.0)
    took = time.monotonic() - began
    denied = engine.sim.stats()["denied_commands"] - before
    print(f"\npermission denied: {denied} denied commands from {len(sessions)} monitors in {took:.1f}s")
    for cid, session_id in sessions.items():
        reason = stopped[cid]["reason"]
        assert reason.startswith(f"gave up after {STOP_AFTER:g}s: router denies /") and WORDS in reason
        row = session_row(session_id)
        assert (row.desired_state, row.actual_state, row.stop_reason) == ("stopped", "stopped", reason)
    # Bounded retries, and the slots are free: nothing holds them, nothing restarts them.
    assert denied <= MAX_DENIED_PER_MONITOR * len(sessions), denied
    wait_for(
        lambda: not any(t.split(":")[0] in sessions.values() for t in live_tokens()),
        5.0,
        what="the slots to be freed",
    )
    for cid in sessions:
        with pytest.raises(service.NotMonitored):
            service.stop(cid)
