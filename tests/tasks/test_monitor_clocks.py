"""Hosts whose clocks are apart: every deadline is on the Redis or the database clock.

Each Celery process here runs under Debian's libfaketime (LD_PRELOAD), which moves its
wall clock (time(), gettimeofday(), clock_gettime(CLOCK_REALTIME)) by a fixed offset:
a monitors worker 120 s ahead, another 10 s behind, and the control worker and beat
10 s ahead. The monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC): only
wall clocks differ between hosts, and Python's timed waits hang when libfaketime
shifts CLOCK_MONOTONIC under them (tests/faketime/sitecustomize.py keeps time.sleep
working). `make check-services` installs libfaketime
(scripts/ensure-system-packages.sh).
"""

from __future__ import annotations

import glob
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.polling import wait_for
from harness.workers import CeleryProcess
from tasks import service
from tests.tasks.engine import Engine
from tests.tasks.monitors import live_tokens, session_row, token
from tests.tasks.streams import customer_entries, id_ms, matches, wait_entry

TTL = 3.0
AHEAD = 120.0
BEHIND = -10.0
CONTROL_AHEAD = 10.0
# How far an entry's `timestamp` may be from its stream id: the same clock, read twice.
SAME_CLOCK_MS = 50


def faketime_library() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "libfaketime is not installed: run `make check-services` (it installs it)"
    return found[0]


# Its sitecustomize.py gives the faked process a time.sleep that libfaketime 0.9.10
# does not break (see that file).
SLEEP_FIX = Path(__file__).resolve().parent.parent / "faketime"


def clock_offset(seconds: float) -> dict[str, str]:
    """The environment that moves a process's wall clock by `seconds`."""
    return {
        "LD_PRELOAD": faketime_library(),
        "FAKETIME": f"{seconds:+g}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": str(SLEEP_FIX),
    }


def measured_offset(env: dict[str, str]) -> float:
    """What time.time() says in a process with `env`, minus ours."""
    before = time.time()
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return float(out) - (before + time.time()) / 2


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=4, hotspot=0, static=0, MONITOR_LEASE_TTL=str(TTL))
    eng.start_worker("default", concurrency=2, name="clk-ctl", **clock_offset(CONTROL_AHEAD))
    eng.start_beat(**clock_offset(CONTROL_AHEAD))
    yield eng


@pytest.fixture(scope="module")
def ahead_worker(engine: Engine) -> CeleryProcess:
    return engine.start_worker("monitors", concurrency=4, name="clk-ahead", **clock_offset(AHEAD))


def assert_timestamps_on_the_redis_clock(entries: list[dict[str, Any]]) -> None:
    for e in entries:
        written = datetime.strptime(e["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        drift = abs(written.timestamp() * 1000 - id_ms(e["id"]))
        assert drift <= SAME_CLOCK_MS, (e["type"], e["timestamp"], e["id"])


def test_monitor_worker_with_its_clock_ahead_still_starts_and_runs_monitors(
    engine: Engine, ahead_worker: CeleryProcess
) -> None:
    offset = measured_offset(ahead_worker.env)
    assert abs(offset - AHEAD) < 5, f"libfaketime did not move the clock: {offset:.1f}s"
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    info = service.start(cid)
    # The message is not "expired" for a worker 2 minutes ahead (its age is measured on
    # the Redis clock), and the run holds its lease (renewals on the Redis clock).
    wait_for(
        lambda: len([e for e in customer_entries(engine.redis, cid) if e["type"] == "traffic"]) >= 3,
        15.0,
        what="three samples from the worker whose clock is ahead",
    )
    assert f"monitor-{info.session_id}-1" in ahead_worker.log()
    assert token(info.session_id, 1) in live_tokens(engine.redis)
    assert session_row(info.session_id).attempt == 1
    # The entries' times come from the Redis clock, like their ids: a dashboard plotting
    # `timestamp` would otherwise draw this customer two minutes in the future.
    assert_timestamps_on_the_redis_clock(customer_entries(engine.redis, cid))


def test_monitor_killed_worker_is_restarted_by_a_reconciler_whose_clock_is_ahead(
    engine: Engine, ahead_worker: CeleryProcess
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    row = session_row(service.status()["monitors"][0]["session_id"])
    assert str(row.customer_id) == cid and row.attempt == 1
    behind = engine.start_worker("monitors", concurrency=4, name="clk-behind", **clock_offset(BEHIND))
    assert abs(measured_offset(behind.env) - BEHIND) < 5

    ahead_worker.signal(signal.SIGKILL)
    ahead_worker.wait_exit(5)
    # Lease expiry (Redis clock), the reconciler's grace (database clock) and the new
    # message's age (Redis clock) all hold with beat and the control worker 10 s ahead
    # and the new worker 10 s behind.
    started = wait_entry(
        engine.redis,
        cid,
        matches(type="started", session_id=str(row.id), reason="attempt 2"),
        TTL + 15.0,
        "attempt 2 on the worker whose clock is behind",
    )
    wait_entry(
        engine.redis,
        cid,
        lambda e: e["type"] == "traffic" and e["fence"] == started["fence"],
        10.0,
        "samples of attempt 2",
    )
    assert f"monitor-{row.id}-2" in behind.log()
    assert session_row(row.id).attempt == 2
    entries = customer_entries(engine.redis, cid)
    fences = [e["fence"] for e in entries if e["type"] == "traffic"]
    assert fences == sorted(fences), "the old producer wrote after the new one"
    assert_timestamps_on_the_redis_clock(entries)
    service.stop(cid)
    wait_for(lambda: not live_tokens(engine.redis), 5.0, what="the slot back")
