"""A router that will not let us in: its API sessions used up by other tools, its logins
refused, its ports closed while it reboots. Real worker, beat and simulator.

What must hold (docs/architecture.md, "... a router will not let us in"):
every monitor says `offline` with the router's words; the worker's router hub retries
the login on ONE backoff for all monitors of that router, so the router sees a bounded
number of attempts however many monitors wait (counted on the simulator's side); and
once the router lets us in again every monitor resumes on one API session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from harness.seed import parse_ts
from tasks import service
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitors
from tests.tasks.streams import Predicate, matches, sample_after, wait_entry

# Monitors per scenario: enough that a per-monitor retry ladder would show on the router.
MONITORS = 16
# How long each outage is held while the router counts our attempts.
OUTAGE = 20.0
# The hub's backoff (tasks/hub.py) allows at most 6 attempts in OUTAGE seconds (delays
# of at least 0.5, 1, 2, 4, 8, 15 s), whatever the number of monitors; 2 more for the
# client's own re-dial and a slow start. A ladder per monitor makes about one a second.
MAX_ATTEMPTS = 8
# The hub's longest delay (CONNECT_BACKOFF_MAX), the monitor's jitter and a sample.
RESUME_DEADLINE = 30.0 + 10.0


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    # over_limit "fatal": the router says why it refuses, and the offline reason must carry it.
    eng = engine_factory(pppoe=MONITORS, hotspot=2, static=0, simulator={"over_limit": "fatal"})
    eng.start_worker("monitors", concurrency=24)
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


def _customers(eng: Engine) -> list[str]:
    """Both kinds of source: streamed PPPoE interfaces and polled hotspot queues."""
    names = eng.usernames("pppoe")[: MONITORS - 2] + eng.usernames("hotspot")[:2]
    return [eng.customer_id(u) for u in names]


def _start_all(ids: list[str]) -> dict[str, str]:
    """Start a monitor for each customer (the router may refuse them); cid -> session id."""
    return {cid: service.start(cid, requested_by="refusals-test").session_id for cid in ids}


def _start_all_sampling(eng: Engine, ids: list[str]) -> dict[str, str]:
    """Start a monitor for each customer and wait for its first sample; cid -> session id."""
    running = start_monitors(eng, ids, requested_by="refusals-test")
    return {cid: m.session_id for cid, m in running.items()}


def _stop_all(eng: Engine, sessions: dict[str, str]) -> None:
    for cid, session_id in sessions.items():
        service.stop(cid, requested_by="refusals-test")
        wait_entry(eng.redis, cid, matches(type="stopped", session_id=session_id), 10.0, "stopped")
    wait_for(lambda: eng.sim.stats()["open_sessions"] == 0, 10.0, what="our API session to close")


def _said(kind: str, session_id: str, words: str = "") -> Predicate:
    """An entry of `kind` for the session whose reason holds `words`."""

    def check(entry: dict[str, Any]) -> bool:
        reason = entry.get("reason") or ""
        return bool(entry["type"] == kind and entry["session_id"] == session_id and words in reason)

    return check


def _wait_all(eng: Engine, sessions: dict[str, str], kind: str, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    return [
        wait_entry(
            eng.redis,
            cid,
            _said(kind, session_id),
            max(0.1, deadline - time.monotonic()),
            f"a {kind} entry for every monitor",
        )
        for cid, session_id in sessions.items()
    ]


def _wait_offline_with(eng: Engine, sessions: dict[str, str], words: str, timeout: float) -> None:
    for cid, session_id in sessions.items():
        wait_entry(eng.redis, cid, _said("offline", session_id, words), timeout, f"offline saying {words!r}")


def _resume_and_check_one_session(eng: Engine, sessions: dict[str, str], released_at: float) -> float:
    """Every monitor resumes, with samples after it, on one API session; returns the
    seconds from the router letting us in to the last `resumed`."""
    resumed = _wait_all(eng, sessions, "resumed", RESUME_DEADLINE)
    for (cid, session_id), event in zip(sessions.items(), resumed):
        wait_entry(eng.redis, cid, sample_after(session_id, event["seq"]), 10.0, "samples after resumed")
    stats = eng.sim.stats()
    assert stats["sessions_by_service"]["api"] == 1, stats  # one connection for all monitors
    return max(parse_ts(e["timestamp"]) for e in resumed) - released_at


def test_monitor_router_sessions_used_up_by_other_tools_offline_then_one_connection(engine: Engine) -> None:
    sim = engine.sim
    sim.hold_foreign_sessions(20)  # max-sessions is 20: every API session is taken
    try:
        before = sim.stats()["refused_connections"]
        began = time.monotonic()
        sessions = _start_all(_customers(engine))
        _wait_offline_with(engine, sessions, "too many sessions", 10.0)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - began)))  # the router counts meanwhile
        attempts = sim.stats()["refused_connections"] - before
        held = time.monotonic() - began
    finally:
        sim.hold_foreign_sessions(19)  # one other tool logs out
    released = time.time()
    took = _resume_and_check_one_session(engine, sessions, released)
    print(
        f"\nsessions used up: {attempts} login attempts in {held:.1f}s by {len(sessions)} monitors; "
        f"all resumed {took:.1f}s after a session was free"
    )
    assert attempts <= MAX_ATTEMPTS, f"{attempts} attempts in {held:.1f}s: the monitors hammer the router"
    sim.hold_foreign_sessions(0)
    _stop_all(engine, sessions)


def test_monitor_router_refusing_logins_backs_off_once_for_all_then_one_connection(engine: Engine) -> None:
    sim = engine.sim
    sessions = _start_all_sampling(engine, _customers(engine))
    before = sim.stats()["failed_logins"]
    began = time.monotonic()
    sim.refuse_logins(True)  # a disabled API user, or a router still booting
    try:
        sim.close_connections()  # ...and our session is gone: the re-login is refused
        _wait_offline_with(engine, sessions, "invalid user name or password (6)", 10.0)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - began)))
        attempts = sim.stats()["failed_logins"] - before
        held = time.monotonic() - began
    finally:
        sim.refuse_logins(False)
    released = time.time()
    took = _resume_and_check_one_session(engine, sessions, released)
    print(
        f"\nlogins refused: {attempts} login attempts in {held:.1f}s by {len(sessions)} monitors; "
        f"all resumed {took:.1f}s after logins were accepted"
    )
    assert attempts <= MAX_ATTEMPTS, f"{attempts} attempts in {held:.1f}s: the monitors hammer the router"
    _stop_all(engine, sessions)


def test_monitor_router_rebooting_ports_closed_offline_then_one_connection(engine: Engine) -> None:
    sim = engine.sim
    sessions = _start_all_sampling(engine, _customers(engine))
    sim.refuse_connections(True)  # the API service is down while the router reboots
    try:
        sim.close_connections()
        # The shared client re-dials on its own backoff; past a blip the monitors are
        # offline with the reason its re-dials fail.
        _wait_offline_with(engine, sessions, "Connection refused", 15.0)
        logins = sim.stats()["logins"]
    finally:
        sim.refuse_connections(False)
    released = time.time()
    took = _resume_and_check_one_session(engine, sessions, released)
    assert sim.stats()["logins"] - logins == 1  # one login brought every monitor back
    print(f"\nports closed: all resumed {took:.1f}s after the router listened again")
    _stop_all(engine, sessions)
