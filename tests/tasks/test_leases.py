"""The per-process lease keeper against a real Redis: progress-based renewals, stop keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.polling import wait_for
from tasks import keys
from tasks.leases import LeaseHandle, LeaseKeeper
from tasks.lifecycle import LEASE_LOST, REVOKED, STOP_REQUESTED, request_stop
from tasks.semaphore import ClaimedLease, Semaphore

TTL = 1.0


RUN = "host:1:run"


def claimed(
    keeper: LeaseKeeper,
    session: str,
    customer: str,
    ttl: float = TTL,
    *,
    task_id: str | None = None,
    stop_event: threading.Event | None = None,
) -> LeaseHandle:
    """A lease claimed by a monitor run and registered with the keeper, as the task does."""
    token = f"{session}:1"
    keeper.semaphore.claim(token, customer, "r1", RUN, global_limit=100, router_limit=None, ttl=ttl)
    return keeper.register(
        token, customer, "r1", session_id=session, claimant=RUN, task_id=task_id, stop_event=stop_event
    )


@pytest.fixture
def keeper(redis_client: redis.Redis) -> Iterator[LeaseKeeper]:
    k = LeaseKeeper(Semaphore(redis_client), ttl=TTL, renew_interval=0.2, stop_poll_interval=0.05)
    try:
        yield k
    finally:
        k.close()


def test_leases_keeper_renews_only_progressing_monitors(keeper: LeaseKeeper) -> None:
    sem = keeper.semaphore
    alive = claimed(keeper, "s1", "alice")
    hung = claimed(keeper, "s2", "bob")
    done = threading.Event()

    def loop() -> None:  # a healthy monitor loop: progress on every iteration
        while not done.wait(0.05):
            alive.progress()

    worker = threading.Thread(target=loop)
    worker.start()
    keeper.start()
    try:
        # bob's loop never reports progress: its lease runs out on the Redis clock
        wait_for(
            lambda: sem.owner_of("bob") is None and sem.in_use() == 1,
            what="the hung monitor's lease to expire",
        )
        wait_for(lambda: hung.stopped, what="the hung monitor's stop event")
        assert hung.stop_reason == LEASE_LOST and hung.lease_lost
        assert not alive.stopped
        alice = sem.owner_of("alice")
        assert alice is not None and alice.token == alive.token
    finally:
        done.set()
        worker.join()


def test_leases_keeper_sets_stop_events_from_stop_keys(
    keeper: LeaseKeeper, redis_client: redis.Redis
) -> None:
    shared = threading.Event()  # a monitor may share its Event with revoke/shutdown
    first = claimed(keeper, "s1", "alice", ttl=30, stop_event=shared)
    second = claimed(keeper, "s2", "bob", ttl=30)
    keeper.start()
    request_stop(redis_client, "s1", "api stop")
    assert shared.wait(5.0)
    assert first.stop_reason == "api stop"
    assert not second.stopped
    assert redis_client.pttl(keys.session_stop("s1")) > 0


def test_leases_empty_stop_value_still_stops(keeper: LeaseKeeper, redis_client: redis.Redis) -> None:
    handle = claimed(keeper, "s1", "alice", ttl=30)
    redis_client.set(keys.session_stop("s1"), "")
    assert keeper.poll_stops() == 1
    assert handle.stop_reason == STOP_REQUESTED


def test_leases_lost_lease_stops_the_monitor_at_once(keeper: LeaseKeeper, redis_client: redis.Redis) -> None:
    a = claimed(keeper, "s1", "alice", ttl=30)
    b = claimed(keeper, "s2", "bob", ttl=30)
    redis_client.delete(keys.customer_owner("alice"))
    assert keeper.renew_round() == 1
    assert a.lease_lost and not b.stopped


def test_leases_flushdb_stops_every_monitor_on_the_next_round(
    keeper: LeaseKeeper, redis_client: redis.Redis
) -> None:
    handles = [claimed(keeper, f"s{i}", f"c{i}", ttl=30) for i in range(5)]
    redis_client.flushdb()
    assert keeper.renew_round() == 0
    assert all(h.lease_lost for h in handles)


def test_leases_renew_round_skips_monitors_without_progress(
    keeper: LeaseKeeper, redis_client: redis.Redis
) -> None:
    a = claimed(keeper, "s1", "alice")
    claimed(keeper, "s2", "bob")
    assert keeper.renew_round() == 2  # registration counts as progress
    assert keeper.renew_round() == 0
    a.progress()
    assert keeper.renew_round() == 1


def test_leases_monitor_ending_during_a_renewal_is_not_reported_lost(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    class EndsDuringRenewal(Semaphore):
        def renew_many(self, leases: Sequence[ClaimedLease], ttl: float) -> list[bool]:
            # The monitor's `finally` runs between the round's snapshot and its script call.
            keeper.unregister(handle)
            self.release(handle.token, "alice", "r1")
            return super().renew_many(leases, ttl)

    keeper = LeaseKeeper(EndsDuringRenewal(redis_client), ttl=TTL, renew_interval=0.2)
    handle = claimed(keeper, "s1", "alice", ttl=30)
    with caplog.at_level("WARNING", logger="tasks.leases"):
        assert keeper.renew_round() == 0
    assert not handle.stopped and handle.stop_reason is None
    assert "lost" not in caplog.text


def test_leases_unregistered_monitor_is_neither_renewed_nor_polled(
    keeper: LeaseKeeper, redis_client: redis.Redis
) -> None:
    handle = claimed(keeper, "s1", "alice", ttl=30)
    keeper.unregister(handle)
    keeper.unregister(handle)
    request_stop(redis_client, "s1", STOP_REQUESTED)
    assert keeper.renew_round() == 0 and keeper.poll_stops() == 0
    assert not handle.stopped and keeper.handles() == []


def test_leases_duplicate_registration_is_refused(keeper: LeaseKeeper) -> None:
    handle = claimed(keeper, "s1", "alice", ttl=30)
    with pytest.raises(ValueError):
        keeper.register(handle.token, "alice", "r1", session_id="s1", claimant=RUN)


def test_leases_stop_all_reaches_every_monitor_and_first_reason_wins(keeper: LeaseKeeper) -> None:
    handles = [claimed(keeper, f"s{i}", f"c{i}", ttl=30) for i in range(3)]
    handles[0].request_stop("revoked")
    keeper.stop_all("worker-shutdown")
    assert [h.stop_reason for h in handles] == ["revoked", "worker-shutdown", "worker-shutdown"]


def test_leases_unreachable_redis_stops_monitors_after_the_ttl(redis_client: redis.Redis) -> None:
    # A client for a port nothing listens on, without redis-py's default retries.
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    keeper = LeaseKeeper(Semaphore(dead), ttl=0.5, renew_interval=0.1, stop_poll_interval=0.05)
    handle = keeper.register("s1:1", "alice", "r1", session_id="s1", claimant=RUN)
    keeper.start()
    try:
        assert handle.stop_event.wait(5.0)
        assert handle.stop_reason == LEASE_LOST
        assert keeper.running  # errors never kill the keeper
    finally:
        keeper.close()
    assert not keeper.running


def test_leases_keeper_refuses_a_renew_interval_not_below_the_ttl(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError):
        LeaseKeeper(Semaphore(redis_client), ttl=5, renew_interval=5)


def test_leases_keeper_from_settings_uses_its_own_client(redis_client: redis.Redis) -> None:
    from settings import load_settings
    from tests.services import TEST_REDIS_URL

    settings = load_settings(
        {
            "REDIS_URL": TEST_REDIS_URL,
            "MONITOR_LEASE_TTL": "2",
            "MONITOR_RENEW_INTERVAL": "0.5",
            "RECONCILE_INTERVAL": "1",
        },
        env_file="/nonexistent",
    )
    sem = Semaphore(redis_client)
    keeper = LeaseKeeper.from_settings(sem, settings)
    try:
        assert keeper.redis is not redis_client
        assert (keeper.ttl, keeper.renew_interval) == (2.0, 0.5)
        handle = claimed(keeper, "s1", "alice", ttl=2)
        assert keeper.renew_round() == 1
        request_stop(redis_client, "s1", "api")
        assert keeper.poll_stops() == 1 and handle.stop_reason == "api"
    finally:
        keeper.close()


def test_leases_revoked_task_stops_its_monitor_and_a_stop_key_wins_over_it(
    redis_client: redis.Redis,
) -> None:
    revoked: set[str] = set()
    keeper = LeaseKeeper(Semaphore(redis_client), ttl=30, renew_interval=1, revoked=lambda: revoked)
    try:
        by_flower = claimed(keeper, "s1", "alice", ttl=30, task_id="monitor-s1-1")
        by_api = claimed(keeper, "s2", "bob", ttl=30, task_id="monitor-s2-1")
        untouched = claimed(keeper, "s3", "carol", ttl=30, task_id="monitor-s3-1")
        revoked.update({"monitor-s1-1", "monitor-s2-1"})
        request_stop(redis_client, "s2", "stopped by api")  # the API sends both
        assert keeper.poll_stops() == 2
        assert by_flower.stop_reason == REVOKED
        assert by_api.stop_reason == "stopped by api"
        assert not untouched.stopped
    finally:
        keeper.close()


def test_leases_a_published_stop_is_seen_before_the_next_poll(redis_client: redis.Redis) -> None:
    # A poll interval far longer than the wait below: only the notice can explain the stop.
    keeper = LeaseKeeper(Semaphore(redis_client), ttl=30, renew_interval=5, stop_poll_interval=60)
    try:
        handle = claimed(keeper, "s1", "alice", ttl=30)
        keeper.start()
        wait_for(lambda: keeper._pubsub is not None, 5.0, what="the keeper to listen for stops")
        request_stop(redis_client, "s1", "stopped by api")
        assert handle.stop_event.wait(5.0)
        assert handle.stop_reason == "stopped by api"
    finally:
        keeper.close()


def test_leases_keeper_renews_and_stops_a_router_watch_by_its_own_key(
    keeper: LeaseKeeper, redis_client: redis.Redis
) -> None:
    from tasks.semaphore import WATCHES
    from tasks.watch_lifecycle import request_stop as stop_watch

    watches = Semaphore(redis_client, space=WATCHES)
    watches.claim("watch:r1:a", "r1", "r1", RUN, global_limit=100, router_limit=1, ttl=TTL)
    watch = keeper.register(
        "watch:r1:a",
        "r1",
        "r1",
        session_id="watch:r1:a",
        claimant=RUN,
        space=WATCHES,
        stop_key=keys.watch_stop("r1"),
    )
    monitor = claimed(keeper, "s1", "alice")
    done = threading.Event()

    def loops() -> None:
        while not done.wait(0.05):
            watch.progress()
            monitor.progress()

    worker = threading.Thread(target=loops)
    worker.start()
    keeper.start()
    try:
        start = keeper.renewals["ok"]
        wait_for(lambda: keeper.renewals["ok"] >= start + 6, what="a few renewal rounds of both")
        assert owner_token(watches, "r1") == "watch:r1:a" and not watch.stopped
        stop_watch(redis_client, "r1", "router removed")
        wait_for(lambda: watch.stopped, timeout=2, what="the watch's stop key to be seen")
        assert watch.stop_reason == "router removed" and not monitor.stopped
    finally:
        done.set()
        worker.join()


def owner_token(sem: Semaphore, subject: str) -> str | None:
    found = sem.owner_of(subject)
    return None if found is None else found.token


def test_leases_keeper_hands_a_session_up_notice_to_that_customers_monitor(
    keeper: LeaseKeeper, redis_client: redis.Redis
) -> None:
    alice, bob = claimed(keeper, "s1", "alice"), claimed(keeper, "s2", "bob")
    woken: list[str] = []
    alice.on_session_up = lambda: woken.append("alice")
    bob.on_session_up = lambda: woken.append("bob")
    keeper.start()
    wait_for(lambda: keeper._pubsub is not None, what="the keeper to listen")
    wait_for(
        lambda: redis_client.publish(keys.SESSION_UP_CHANNEL, "alice") > 0 and bool(woken),
        timeout=3,
        what="the notice to reach alice's monitor",
    )
    assert set(woken) == {"alice"}
