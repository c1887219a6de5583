"""Redis at maxmemory (noeviction) while monitors run, and back.

Every process of this module uses a private redis-server started with a low
`maxmemory` and `noeviction`, as deployed. "Full" is made the way it happens: one big
value fills the memory up, so Redis refuses every write that would grow it (samples,
enqueues, plain SETs) while reads, deletes and scripts that already wrote go on.
Deleting that value frees the memory again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from harness.polling import wait_for
from harness.process import free_port
from harness.redis_server import PrivateRedis
from models import ActualState
from tasks import reconciler, runtime, service, sessions
from tasks.reconciler import Reconciler
from tests.metrics import scrape
from tests.tasks.engine import Engine
from tests.tasks.monitors import (
    live_tokens,
    session_row,
    start_monitor,
    start_monitors,
    stop_every_monitor,
    token,
    wait_next_attempt,
)
from tests.tasks.streams import customer_entries, id_ms, matches, redis_ms, wait_entry

MAXMEMORY = 32 * 2**20
TTL = 4.0
RENEW = 0.5
RECONCILE = 1.0  # RECONCILE_INTERVAL in CELERY_ENV
METRICS_PORT = free_port()
METRICS_URL = f"http://127.0.0.1:{METRICS_PORT}/metrics"
FILLER = "test:filler"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis-full"), extra_args=("--maxmemory", str(MAXMEMORY)))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine(redis_server: PrivateRedis, engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(
        pppoe=8,
        hotspot=0,
        static=0,
        redis_url=redis_server.url,
        MONITOR_LEASE_TTL=str(TTL),
        MONITOR_RENEW_INTERVAL=str(RENEW),
    )
    eng.start_worker("default", concurrency=2, name="full-ctl")
    eng.start_worker("monitors", concurrency=8, name="full-mon", WORKER_METRICS_PORT=str(METRICS_PORT))
    eng.start_beat()
    yield eng


@pytest.fixture(autouse=True)
def memory_freed_and_monitors_stopped(engine: Engine) -> Iterator[None]:
    yield
    free_memory(engine.redis)
    stop_every_monitor(engine.redis, 10.0)


# allow-oom, so the value is written even when it passes maxmemory (a plain SET of a
# big value is refused as soon as its own argument would).
_GROW = "#!lua flags=allow-oom\nreturn redis.call('SET', KEYS[1], string.rep('x', tonumber(ARGV[1])))"


def fill_up(client: redis.Redis) -> None:
    """Grow the data past maxmemory, as samples would: then Redis refuses growing writes."""
    used = int(client.info("memory")["used_memory"])
    client.eval(_GROW, 1, f"{FILLER}:0", MAXMEMORY - used + 256 * 1024)
    with pytest.raises(redis.OutOfMemoryError):
        client.set("test:probe", "a write that grows memory")


def free_memory(client: redis.Redis) -> None:
    fillers = list(client.scan_iter(f"{FILLER}:*", count=1000))
    if fillers:
        client.delete(*fillers)


def test_monitor_redis_full_keeps_leases_refuses_starts_and_recovers_without_restart(
    engine: Engine, redis_server: PrivateRedis
) -> None:
    cids = [engine.customer_id(u) for u in engine.usernames("pppoe")[:4]]
    running, stopping, refused = cids[:2], cids[2], cids[3]
    producers = start_monitors(engine, [*running, stopping])

    fill_up(engine.redis)
    full_since = time.monotonic()

    # A start is refused with a clear error the web layer maps to 503, and leaves
    # nothing behind: no open session, no slot, no queued message.
    with pytest.raises(service.StorageFull, match="redis out of memory"):
        service.start(refused)
    assert sessions.open_for_customer(refused) is None
    assert {t for t in live_tokens(engine.redis)} == {p.token for p in producers.values()}
    assert engine.redis.llen("monitors") == 0

    # The running monitors say what is wrong: a log line, a metric, their rows.
    wait_for(
        lambda: scrape(METRICS_URL).get("mtmon_worker_publish_failures_total{reason=redis-oom}", 0) >= 2,
        10.0,
        what="publish failures counted as redis-oom",
    )
    wait_for(lambda: "redis out of memory" in engine.log_of("full-mon"), 5.0, what="the log line")
    for cid in running:
        wait_for(
            lambda c=cid: session_row(producers[c].session_id).actual_state == ActualState.OFFLINE,  # type: ignore[misc]
            5.0,
            what=f"{cid}'s row to say offline",
        )

    # A stop still works: the stop key gets through a full Redis, the monitor ends and
    # gives its slot back, its row is closed.
    service.stop(stopping, requested_by="test")
    wait_for(
        lambda: producers[stopping].token not in live_tokens(engine.redis),
        5.0,
        what="the stopped monitor's slot",
    )
    wait_for(
        lambda: session_row(producers[stopping].session_id).actual_state == ActualState.STOPPED,
        5.0,
        what="the stopped monitor's row closed",
    )

    # Full for longer than a lease TTL and several reconcile passes: the other monitors
    # keep their leases (renewals need no new memory) and nobody restarts anything.
    wait_for(lambda: time.monotonic() - full_since > 2 * TTL + 2 * RECONCILE, 3 * TTL + 10, what="time")
    assert live_tokens(engine.redis) == {producers[c].token for c in running}
    assert "lease-lost" not in engine.log_of("full-mon")

    # Memory freed: the same attempts go on, `resumed` first, one producer each.
    freed_ms = redis_ms(engine.redis)
    free_memory(engine.redis)
    for cid in running:
        p = producers[cid]
        wait_entry(
            engine.redis,
            cid,
            lambda e, f=p.fence: e["type"] == "traffic" and e["fence"] == f and id_ms(e["id"]) >= freed_ms,  # type: ignore[misc]
            10.0,
            f"samples of {cid} after memory was freed",
        )
        entries = customer_entries(engine.redis, cid)
        after = [e for e in entries if id_ms(e["id"]) >= freed_ms]
        # The samples dropped while Redis was full are a hole in the session's seqs: a gap
        # entry says so first (tasks/publisher.py), then `resumed` continues the seqs.
        assert [e["type"] for e in after[:2]] == ["gap", "resumed"], after[:3]
        assert after[0]["seq_to"] + 1 == after[1]["seq"] and after[0]["lost"] >= 1, after[:2]
        assert {e["fence"] for e in entries} == {p.fence}, "another producer wrote"
        assert [e["type"] for e in entries].count("started") == 1
        assert session_row(p.session_id).attempt == 1
        wait_for(
            lambda s=p.session_id: session_row(s).actual_state == ActualState.RUNNING,  # type: ignore[misc]
            5.0,
            what="the row back to running",
        )
    # And new monitors start again.
    start_monitor(engine, refused)


def test_reconciler_backs_off_while_redis_is_full_and_restarts_once_memory_is_freed(
    engine: Engine,
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[5])
    info = start_monitor(engine, cid)
    fill_up(engine.redis)
    # The lease vanishes (as if its worker had died and the TTL run out): the monitor is
    # fenced out and the session is wanted without a live lease.
    row = session_row(info.session_id)
    runtime.current().semaphore.release(token(str(row.id), row.attempt), row.customer_id, row.router_id)
    wait_for(lambda: not live_tokens(engine.redis), 5.0, what="the lease to be gone")
    wait_for(
        lambda: f"monitor {token(info.session_id, 1)} ended: lease-lost" in engine.log_of("full-mon"),
        5.0,
        what="the fenced-out monitor to end",
    )
    reconciler.redis_full.cleared()
    time.sleep(1.2)  # reconciler.GRACE_SECONDS: the row must look untouched

    # A pass cannot take a lease: it backs off before writing anything in SQL.
    first = Reconciler().run()
    assert first["storage_waits"] == 1 and first["restarted"] == 0, first
    assert reconciler.redis_full.paused()
    again = Reconciler().run()
    assert again["storage_waits"] == 1 and again["restarted"] == 0, again
    assert session_row(info.session_id).attempt == 1, "the attempt moved while nothing could run"
    assert not live_tokens(engine.redis), "a lease was taken that nothing can use"

    free_memory(engine.redis)
    # The control worker's passes restart it once, as attempt 2.
    wait_entry(
        engine.redis,
        cid,
        matches(type="started", session_id=info.session_id, reason="attempt 2"),
        15.0,
        "attempt 2",
    )
    wait_next_attempt(engine, info, 10.0)
    assert session_row(info.session_id).attempt == 2
    reconciler.redis_full.cleared()


def test_semaphore_refuses_new_leases_within_the_memory_reserve(
    engine: Engine, redis_server: PrivateRedis
) -> None:
    from tasks.semaphore import Semaphore, StorageFull

    client = redis_server.client()
    try:
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", int(used / 0.97))  # 3% free: below the 5% reserve
        sem = Semaphore(client)
        with pytest.raises(StorageFull, match="redis out of memory"):
            sem.acquire(f"{uuid.uuid4()}:1", uuid.uuid4(), "r", global_limit=5, router_limit=None, ttl=5)
        # Plain writes still work there: the running monitors use the reserve.
        client.set("test:probe", "x")
        client.config_set("maxmemory", MAXMEMORY)
        tok = f"{uuid.uuid4()}:1"
        sem.acquire(tok, uuid.uuid4(), "r", global_limit=5, router_limit=None, ttl=5)
        assert tok in {h.token for h in sem.holders()}
    finally:
        client.config_set("maxmemory", MAXMEMORY)
        client.close()
