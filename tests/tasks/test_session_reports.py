"""Session reports written by the engine (tasks/session_reports.py), with real workers,
beat and the simulator: at a stop, across a handover, and by the reconciler after a
kill -9; each equal to an independent computation from the session's retained entries."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.workers import CeleryProcess
from tasks import service, sessions
from tasks.keys import customer_stream
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor, start_monitors, wait_next_attempt
from tests.tasks.stored_reports import (
    INTERVAL,
    assert_report_matches,
    expected_report,
    session_entries,
    wait_report,
)
from tests.tasks.streams import matches, wait_entry
from tests.web.local import LOCAL_URL
from web.app import create_app

TTL = 3.0


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=8, hotspot=0, static=0, MONITOR_LEASE_TTL=str(TTL))
    eng.start_worker("default", concurrency=2, name="reports-control")
    eng.start_beat()
    yield eng


@pytest.fixture
def monitors(engine: Engine) -> Iterator[CeleryProcess]:
    """A monitors worker of the test's own (the one it may kill), stopped after it."""
    proc = engine.start_worker("monitors", concurrency=4, name=f"reports-{time.monotonic_ns()}")
    yield proc
    proc.stop()


def test_session_reports_stop_writes_the_report_within_2s_and_it_outlives_the_stream(
    engine: Engine, monitors: CeleryProcess
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    running = start_monitor(engine, cid)
    wait_entry(
        engine.redis, cid, matches(type="traffic", session_id=running.session_id, seq=6), 15.0, "6 samples"
    )
    service.stop(cid, requested_by="noc")
    stopped_at = time.monotonic()
    report = wait_report(running.session_id, 2.0)
    assert time.monotonic() - stopped_at <= 2.0
    wait_entry(engine.redis, cid, matches(type="stopped", session_id=running.session_id), 5.0, "stopped")
    entries = session_entries(engine.redis, cid, running.session_id)
    assert_report_matches(report, expected_report(entries))
    row = sessions.get(running.session_id)
    assert row is not None and row.started_at is not None and row.stopped_at is not None
    assert (report["stop_reason"], report["partial"]) == ("stopped by noc", False)
    assert report["duration_s"] == pytest.approx((row.stopped_at - row.started_at).total_seconds(), abs=0.002)
    assert report["missing_s"] == max(0, round(report["duration_s"] / INTERVAL) - report["samples"])
    customer = engine.customers[engine.usernames("pppoe")[0]]
    assert (report["customer_id"], report["username"]) == (cid, customer["username"])

    engine.redis.delete(customer_stream(cid))  # as the retention would, 30 minutes later
    with TestClient(create_app(), base_url=LOCAL_URL) as client:
        served = client.get(f"/api/sessions/{running.session_id}").json()
        listed = client.get(f"/api/customers/{cid}/sessions").json()
    assert served == report and listed["items"][0] == report and listed["total"] == 1


def test_session_reports_next_attempt_continues_the_report_after_a_handover(
    engine: Engine, monitors: CeleryProcess
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[1])
    running = start_monitor(engine, cid)
    wait_entry(
        engine.redis, cid, matches(type="traffic", session_id=running.session_id, seq=4), 15.0, "samples"
    )
    successor = engine.hand_over(monitors.name, f"{monitors.name}-next")
    try:
        later = wait_next_attempt(engine, running, 20.0)
        wait_entry(
            engine.redis,
            cid,
            lambda e: (
                e["type"] == "traffic"
                and e["session_id"] == running.session_id
                and e["seq"] > later["seq"] + 2
            ),
            10.0,
            "samples of the next attempt",
        )
        service.stop(cid, requested_by="noc")
        report = wait_report(running.session_id, 2.0)
    finally:
        successor.stop()
    entries = session_entries(engine.redis, cid, running.session_id)
    assert {e["fence"] for e in entries if e["type"] == "traffic"} == {running.fence, later["fence"]}
    assert_report_matches(report, expected_report(entries))
    assert report["partial"] is False


def test_session_reports_reconciler_reports_a_killed_monitors_session_partial_when_entries_expired(
    engine: Engine, monitors: CeleryProcess
) -> None:
    whole, trimmed = (engine.customer_id(u) for u in engine.usernames("pppoe")[2:4])
    started = start_monitors(engine, [whole, trimmed])
    for cid, running in started.items():
        wait_entry(
            engine.redis, cid, matches(type="traffic", session_id=running.session_id, seq=5), 15.0, "samples"
        )
    monitors.signal(signal.SIGKILL)
    monitors.wait_exit(5.0)
    # The oldest entries of one session expire (its `started` and first samples).
    kept = session_entries(engine.redis, trimmed, started[trimmed].session_id)[3:]
    engine.redis.xtrim(customer_stream(trimmed), minid=kept[0]["id"], approximate=False)
    for cid in (whole, trimmed):
        service.stop(cid, requested_by="noc")  # the row says stopping; nobody runs it now
    # The reconciler closes them once the dead monitors' leases expired, with their reports.
    reports = {cid: wait_report(r.session_id, TTL + 10.0) for cid, r in started.items()}
    for cid, running in started.items():
        entries = session_entries(engine.redis, cid, running.session_id)
        assert_report_matches(reports[cid], expected_report(entries))
        assert reports[cid]["stop_reason"] == "stopped by noc"
    assert reports[whole]["partial"] is False
    assert reports[trimmed]["partial"] is True
    assert reports[trimmed]["samples"] == len([e for e in kept if e["type"] == "traffic"])
