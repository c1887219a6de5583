"""Redis restart and outages while monitors run (failure modes 10 and 11).

Every process of this module (workers, beat, this test process) uses a private
redis-server, because these tests kill -9 it and freeze it (SIGSTOP); the shared
Redis must never be stopped. The server runs without persistence, so a restart
comes back empty: leases, owner keys, fence counter, streams and broker queues gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from harness.polling import wait_for
from harness.redis_server import PrivateRedis
from tasks import sessions
from tasks.semaphore import Semaphore
from tests.tasks.engine import Engine
from tests.tasks.monitors import PeakSlots, Running, live_tokens, start_monitors, stop_every_monitor, token
from tests.tasks.streams import Predicate, customer_entries, id_ms, matches, wait_entry

N = 6
# Cap == number of monitors: every session can only come back if no stale lease
# (of a dead or fenced-out attempt) is left holding a slot.
CAP = N
RENEW = 0.5  # MONITOR_RENEW_INTERVAL of BASE_ENV
# The monitors' Redis pool times out a command after 5 s (tasks.runtime). The short
# outage must outlast that, because a command the client gave up on still sits in
# the frozen server's socket buffer and runs when it resumes; and it must stay
# clear of the TTL. Hence a TTL longer than the other engine tests use.
POOL_SOCKET_TIMEOUT = 5.0
SAMPLE_INTERVAL = 1.0  # MONITOR_INTERVAL of BASE_ENV: a publish starts within this
TTL = 10.0
SHORT_OUTAGE = POOL_SOCKET_TIMEOUT + SAMPLE_INTERVAL + 0.5
LONG_OUTAGE = TTL + 1.5
RECONCILE = 1.0  # RECONCILE_INTERVAL in CELERY_ENV
# Worker pickup + router subscription + first sample, on a loaded 2-core machine.
SLACK = 6.0
# Room for a keeper starved for a few seconds by a loaded machine.
assert SHORT_OUTAGE < TTL - 3.0


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine(redis_server: PrivateRedis, engine_factory) -> Iterator[Engine]:
    # redis_server first: torn down after the workers, which must not lose it mid-shutdown.
    eng = engine_factory(
        pppoe=3 * N,
        hotspot=0,
        static=0,
        redis_url=redis_server.url,
        MAX_CONCURRENT_MONITORS=str(CAP),
        MONITOR_LEASE_TTL=str(TTL),
        MONITOR_RENEW_INTERVAL=str(RENEW),
    )
    eng.start_worker("default", concurrency=2, name="outage-ctl")
    eng.start_worker("monitors", concurrency=N + 2, name="outage-mon")
    eng.start_beat()
    yield eng


@pytest.fixture(autouse=True)
def stop_sessions_after(engine: Engine) -> Iterator[None]:
    """Each test ends with every monitor stopped and every slot free, even when it
    failed half-way, so the next test has the whole cap."""
    yield
    stop_every_monitor(engine.redis, 5.0)


def _traffic(eng: Engine, cid: str) -> list[dict]:
    return [e for e in customer_entries(eng.redis, cid) if e["type"] == "traffic"]


def _traffic_of_another_fence(fence: int) -> Predicate:
    """Samples written by a producer other than the one holding `fence`."""
    return lambda e: e["type"] == "traffic" and e["fence"] != fence


def _two_samples_since(eng: Engine, cid: str, since_ms: int, fence: int) -> Callable[[], bool]:
    """A wait_for condition: `fence` wrote at least two samples from `since_ms` on."""
    return lambda: (
        sum(1 for e in _traffic(eng, cid) if id_ms(e["id"]) >= since_ms and e["fence"] == fence) >= 2
    )


def _lease_expiry(eng: Engine, token: str) -> float | None:
    """When `token`'s lease expires, on this process's monotonic clock."""
    for h in Semaphore(eng.redis).holders():
        if h.token == token:
            return time.monotonic() + h.expires_in
    return None


def assert_new_attempts_keep_their_leases(eng: Engine, producers: dict[str, Running]) -> None:
    """Each customer's only lease is its next attempt's, and the worker's lease keeper
    (whose renewals failed or timed out during the trouble) still renews it: its
    expiry moves forward. Nobody restarted a session twice."""
    tokens = {cid: token(p.session_id, p.attempt + 1) for cid, p in producers.items()}
    assert live_tokens(eng.redis) == set(tokens.values())
    first = {cid: _lease_expiry(eng, t) for cid, t in tokens.items()}

    def renewed() -> bool:
        later = {cid: _lease_expiry(eng, t) for cid, t in tokens.items()}
        return all(_moved_forward(first[c], later[c]) for c in tokens)

    wait_for(renewed, 4 * RENEW + 3.0, what="the new attempts' leases to be renewed")
    for p in producers.values():
        row = sessions.get(p.session_id)
        assert row is not None and row.attempt == p.attempt + 1, "restarted more than once"


def _moved_forward(before: float | None, after: float | None) -> bool:
    """A lease's expiry was pushed forward by more than half a renew interval."""
    assert before is not None, "the lease was not live to begin with"
    return after is not None and after > before + RENEW / 2


def assert_one_producer_at_a_time(entries: list[dict]) -> None:
    """In stream order, each fence writes one contiguous run and fences only grow: an
    older producer never writes after a newer one started (fences are monotonic)."""
    runs: list[int] = []
    for e in entries:
        if e["fence"] is None:
            continue  # unfenced status (a reconciler's `stopped`): not a producer
        if not runs or runs[-1] != e["fence"]:
            assert e["fence"] not in runs, f"fence {e['fence']} wrote again after {runs[-1]}"
            runs.append(e["fence"])
    assert runs == sorted(runs), f"fences went backwards: {runs}"


def test_monitor_redis_restart_brings_every_session_back_once_within_cap(
    engine: Engine, redis_server: PrivateRedis
) -> None:
    producers = start_monitors(engine, [engine.customer_id(u) for u in engine.usernames("pppoe")[:N]])
    new: dict[str, dict] = {}  # cid -> the first sample of its next attempt
    with PeakSlots(redis_server.url) as slots:
        redis_server.restart_empty()
        restarted = time.monotonic()
        # Leases vanished with the data: renewals answer "lost", the monitors stop,
        # and the reconciler (beat, also reconnected) starts a new attempt of each.
        for cid, p in producers.items():
            left = TTL + RECONCILE + SLACK - (time.monotonic() - restarted)
            new[cid] = wait_entry(
                engine.redis,
                cid,
                matches(type="traffic", session_id=p.session_id),
                max(left, 0.1),
                f"samples of {cid} after the restart",
            )
    assert slots.peak <= CAP
    for cid, p in producers.items():
        row = sessions.get(p.session_id)
        assert row is not None and row.attempt > p.attempt
        # The fence counter was lost too; a restarted one must still not hand out a
        # fence an old producer holds, or a stale writer could not be told apart.
        assert new[cid]["fence"] > p.fence
        entries = customer_entries(engine.redis, cid)
        assert all(e["fence"] != p.fence for e in entries), "old producer wrote again"
        assert_one_producer_at_a_time(entries)
        # The old attempt noticed it lost its lease and stopped by itself.
        assert f"monitor {p.token} ended: lease-lost" in engine.log_of("outage-mon")
    # Exactly one lease per customer, the next attempt's, and it is kept.
    assert_new_attempts_keep_their_leases(engine, producers)


def test_monitor_short_redis_outage_is_tolerated_by_the_same_attempts(
    engine: Engine, redis_server: PrivateRedis
) -> None:
    producers = start_monitors(engine, [engine.customer_id(u) for u in engine.usernames("pppoe")[N : 2 * N]])
    tokens = {p.token for p in producers.values()}
    with PeakSlots(redis_server.url) as slots:
        redis_server.pause()
        try:
            # The outage itself: shorter than the lease TTL, longer than a publish's
            # socket timeout (that publish is then executed late, on resume).
            time.sleep(SHORT_OUTAGE)
        finally:
            resumed_ms = int(time.time() * 1000)
            redis_server.resume()
        # Everyone keeps producing with the same fence after the outage.
        for cid, p in producers.items():
            wait_for(
                _two_samples_since(engine, cid, resumed_ms, p.fence),
                5.0,
                what=f"samples of {cid} after the outage",
            )
    assert slots.peak <= CAP
    for cid, p in producers.items():
        row = sessions.get(p.session_id)
        assert row is not None and row.attempt == p.attempt, "restarted needlessly"
        entries = customer_entries(engine.redis, cid)
        assert {e["fence"] for e in entries} == {p.fence}
        assert [e["type"] for e in entries].count("started") == 1
        assert not [e for e in entries if e["type"] == "stopped"]
        # Every entry has its own seq, also the one whose publish timed out in the
        # client but ran when Redis resumed (consumers may deduplicate on it).
        seqs = [e["seq"] for e in entries]
        assert seqs == sorted(set(seqs)), seqs
    assert live_tokens(engine.redis) == tokens
    log = engine.log_of("outage-mon")
    assert not [t for t in tokens if f"monitor {t} ended" in log], "an attempt ended"


def test_monitor_long_redis_outage_fences_out_then_restarts_once(
    engine: Engine, redis_server: PrivateRedis
) -> None:
    producers = start_monitors(
        engine, [engine.customer_id(u) for u in engine.usernames("pppoe")[2 * N : 3 * N]]
    )
    new: dict[str, dict] = {}  # cid -> the first sample of its next attempt
    with PeakSlots(redis_server.url) as slots:
        redis_server.pause()
        try:
            time.sleep(LONG_OUTAGE)  # the outage itself, longer than the lease TTL
        finally:
            resumed_ms = int(time.time() * 1000)
            redis_server.resume()
        resumed = time.monotonic()
        for cid, p in producers.items():
            left = TTL + RECONCILE + SLACK - (time.monotonic() - resumed)
            new[cid] = wait_entry(
                engine.redis,
                cid,
                _traffic_of_another_fence(p.fence),
                max(left, 0.1),
                f"samples of {cid}'s new attempt",
            )
    assert slots.peak <= CAP
    log = engine.log_of("outage-mon")
    for cid, p in producers.items():
        row = sessions.get(p.session_id)
        assert row is not None and row.attempt > p.attempt
        assert new[cid]["session_id"] == p.session_id
        entries = customer_entries(engine.redis, cid)
        # Whatever the old attempt tried once Redis answered again was refused: its
        # lease had expired on the server's clock during the freeze.
        stale = [e for e in entries if e["fence"] == p.fence and id_ms(e["id"]) >= resumed_ms]
        assert not stale, stale
        assert_one_producer_at_a_time(entries)
        # It stopped by itself: its lease keeper saw the lease lost, or the affinity
        # keeper, unable to renew the router's hold for a TTL, handed it over first
        # (tasks/affinity.py); either way the next attempt is the reconciler's.
        ended = {f"monitor {p.token} ended: {why}" in log for why in ("lease-lost", "router-moved")}
        assert True in ended, log[-3000:]
    assert_new_attempts_keep_their_leases(engine, producers)
