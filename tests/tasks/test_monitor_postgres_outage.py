"""PostgreSQL stalled while monitors run: samples go on, rows catch up, stops still work.

Every process of this module reaches PostgreSQL through a pausable TCP proxy
(tests/pgproxy.py). Paused, it forwards nothing and closes nothing: a frozen server
or a black-holed network path, which no server-side timeout can end. DB_STATEMENT_TIMEOUT
is 2 s here, so every client gives up on a round trip after 4 s (models/pg_wait.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.pg import BASE_DATABASE_URL
from harness.polling import wait_for
from harness.process import free_port
from models import ActualState
from tasks import service
from tests.metrics import scrape
from tests.pgproxy import PausableProxy
from tests.tasks.engine import Engine
from tests.tasks.monitors import (
    live_tokens,
    session_row,
    start_monitor,
    start_monitors,
    stop_every_monitor,
    token,
)
from tests.tasks.stored_reports import assert_report_matches, expected_report, session_entries, wait_report
from tests.tasks.streams import customer_entries, id_ms, matches, redis_ms, sample_after, wait_entry

TTL = 4.0
RECONCILE = 1.0  # RECONCILE_INTERVAL in CELERY_ENV
METRICS_PORT = free_port()
METRICS_URL = f"http://127.0.0.1:{METRICS_PORT}/metrics"


@pytest.fixture(scope="module")
def proxy() -> Iterator[PausableProxy]:
    from sqlalchemy.engine import make_url

    target = make_url(BASE_DATABASE_URL)
    server = PausableProxy(target.host or "127.0.0.1", target.port or 5432).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def engine(proxy: PausableProxy, engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(
        pppoe=8,
        hotspot=0,
        static=0,
        database_port=proxy.port,
        DB_STATEMENT_TIMEOUT="2",
        MONITOR_LEASE_TTL=str(TTL),
    )
    eng.start_worker("default", concurrency=2, name="pg-ctl")
    eng.start_worker("monitors", concurrency=8, name="pg-mon", WORKER_METRICS_PORT=str(METRICS_PORT))
    eng.start_beat()
    yield eng


@pytest.fixture(autouse=True)
def postgres_back_and_monitors_stopped(engine: Engine, proxy: PausableProxy) -> Iterator[None]:
    yield
    proxy.resume()
    stop_every_monitor(engine.redis, 15.0)


def test_monitor_keeps_sampling_and_its_lease_while_postgres_is_stalled_and_rows_catch_up(
    engine: Engine, proxy: PausableProxy
) -> None:
    steady, flapping, down = engine.usernames("pppoe")[:3]
    started = start_monitors(engine, [engine.customer_id(u) for u in (steady, flapping, down)])
    running = dict(zip((steady, flapping, down), started.values()))  # by username
    tokens = {m.token for m in running.values()}

    proxy.pause()
    paused_ms = redis_ms(engine.redis)
    paused = time.monotonic()
    engine.sim.drop_pppoe(flapping, mode="trap")
    engine.sim.drop_pppoe(down, mode="trap")
    for u in (flapping, down):
        wait_entry(
            engine.redis,
            engine.customer_id(u),
            lambda e: e["type"] == "offline" and id_ms(e["id"]) >= paused_ms,
            10.0,
            f"{u} offline",
        )
    # The router comes back while PostgreSQL is still away: the loop did not block on
    # writing "offline" into its row, so it announces the recovery and samples again.
    engine.sim.restore_pppoe(flapping)
    resumed = wait_entry(
        engine.redis,
        engine.customer_id(flapping),
        lambda e: e["type"] == "resumed" and id_ms(e["id"]) >= paused_ms,
        20.0,
        f"{flapping} resumed during the outage",
    )
    wait_entry(
        engine.redis,
        engine.customer_id(flapping),
        sample_after(running[flapping].session_id, resumed["seq"]),
        5.0,
        f"{flapping}'s samples during the outage",
    )
    # Longer than a lease TTL: nobody lost a lease, nothing restarted, samples flow.
    wait_for(lambda: time.monotonic() - paused > TTL + 2 * RECONCILE, 3 * TTL + 20, what="time")
    assert proxy.paused
    assert live_tokens(engine.redis) == tokens
    assert "lease-lost" not in engine.log_of("pg-mon")
    recent = redis_ms(engine.redis) - 2500
    for u in (steady, flapping):
        assert any(
            e["type"] == "traffic" and id_ms(e["id"]) >= recent
            for e in customer_entries(engine.redis, engine.customer_id(u))
        ), f"{u} stopped sampling"
    assert scrape(METRICS_URL)["mtmon_worker_session_writes_pending{}"] >= 1

    proxy.resume()
    # The rows catch up with what happened while PostgreSQL was away.
    wait_for(
        lambda: session_row(running[down].session_id).actual_state == ActualState.OFFLINE,
        20.0,
        what=f"{down}'s row to say offline",
    )
    wait_for(
        lambda: session_row(running[flapping].session_id).actual_state == ActualState.RUNNING,
        20.0,
        what=f"{flapping}'s row to say running",
    )
    pending = "mtmon_worker_session_writes_pending{}"
    wait_for(lambda: scrape(METRICS_URL)[pending] == 0, 10.0, what="no write waiting")
    assert all(session_row(m.session_id).attempt == 1 for m in running.values())
    engine.sim.restore_pppoe(down)


def test_service_stop_works_while_postgres_is_stalled_and_its_row_is_closed_later(
    engine: Engine, proxy: PausableProxy
) -> None:
    stopped_user, other = engine.usernames("pppoe")[3:5]
    cid = engine.customer_id(stopped_user)
    info = start_monitor(engine, cid)

    proxy.pause()
    result: list[Any] = []
    caller = threading.Thread(target=lambda: result.append(_call(service.stop, cid, "test")), daemon=True)
    caller.start()
    caller.join(60)  # bounded by the client deadlines; never a hang
    assert not caller.is_alive(), "service.stop hung on the stalled database"
    (stopping,) = result
    assert isinstance(stopping, service.SessionInfo), stopping
    assert (stopping.session_id, stopping.desired_state) == (info.session_id, "stopped")

    # The monitor stops at once (the stop key), says so and gives its slot back.
    stopped = wait_entry(
        engine.redis, cid, matches(type="stopped", session_id=info.session_id), 15.0, "stopped event"
    )
    assert stopped["reason"] == "stopped by test"
    wait_for(lambda: token(info.session_id, 1) not in live_tokens(engine.redis), 5.0, what="the slot back")
    entries = customer_entries(engine.redis, cid)
    assert entries[-1]["type"] == "stopped", entries[-3:]
    # A start cannot be recorded: a clear error (503), not a hang and not a half start.
    with pytest.raises(service.DatabaseUnavailable):
        service.start(engine.customer_id(other))
    assert proxy.paused

    proxy.resume()
    # The row is closed with the stop's words, and the session is not brought back.
    wait_for(
        lambda: session_row(info.session_id).actual_state == ActualState.STOPPED,
        20.0,
        what="the row to be closed",
    )
    row = session_row(info.session_id)
    assert (row.desired_state, row.stop_reason, row.attempt) == ("stopped", "stopped by test", 1)
    # Its report was written with the row (by the monitor's retried close, or the
    # reconciler from the stream): the whole session, nothing lost to the outage.
    report = wait_report(info.session_id, 1.0)
    assert_report_matches(report, expected_report(session_entries(engine.redis, cid, info.session_id)))
    assert (report["stop_reason"], report["partial"]) == ("stopped by test", False)
    time.sleep(3 * RECONCILE)  # a few reconcile passes: nothing restarts it
    assert not live_tokens(engine.redis)
    assert session_row(info.session_id).attempt == 1


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # handed to the test thread, which asserts on it
        return exc
