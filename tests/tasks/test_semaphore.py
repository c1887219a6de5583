"""The Lua semaphore against a real Redis: caps, single flight, expiry, fences."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TypedDict

import pytest
import redis

from harness.polling import wait_for
from tasks import keys
from tasks.semaphore import RENEW_CHUNK, AlreadyMonitored, CapacityError, ClaimedElsewhere, Owner, Semaphore
from tests.tasks.streams import redis_ms

TTL = 30.0
SHORT_TTL = 0.5
RUN = "host:1:run-a"  # the claimant: one monitor run


class Limits(TypedDict):
    """The caps and TTL keywords of acquire/claim, to pass as **limits."""

    global_limit: int
    router_limit: int | None
    ttl: float


def renewed(sem: Semaphore, token: str, customer: str, router: str, ttl: float, claimant: str = RUN) -> bool:
    return sem.renew_many([(token, customer, router, claimant)], ttl)[0]


def owner(sem: Semaphore, customer: str) -> Owner:
    """The customer's owner lease, which the test expects to exist."""
    found = sem.owner_of(customer)
    assert found is not None, f"{customer} has no owner"
    return found


def run_concurrently(calls: list[Callable[[], object]]) -> list[object]:
    """Start every call at the same barrier; return each result or raised exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_semaphore_n_plus_one_concurrent_acquires_grant_exactly_n(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    cap = 10
    results = run_concurrently(
        [
            partial(sem.acquire, f"s{i}:1", f"c{i}", "r1", global_limit=cap, router_limit=None, ttl=TTL)
            for i in range(cap + 1)
        ]
    )
    fences = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, CapacityError)]
    assert len(fences) == cap and len(set(fences)) == cap
    assert len(refused) == 1
    assert (refused[0].scope, refused[0].cap, refused[0].in_use) == ("global", cap, cap)
    assert sem.in_use() == cap


def test_semaphore_fifty_concurrent_acquires_for_one_customer_have_one_winner(
    redis_client: redis.Redis,
) -> None:
    sem = Semaphore(redis_client)
    results = run_concurrently(
        [
            partial(sem.acquire, f"s{i}:1", "alice", "r1", global_limit=100, router_limit=None, ttl=TTL)
            for i in range(50)
        ]
    )
    winners = [i for i, r in enumerate(results) if isinstance(r, int)]
    assert len(winners) == 1
    winner_token = f"s{winners[0]}:1"
    losers = [r for r in results if not isinstance(r, int)]
    assert len(losers) == 49
    assert all(isinstance(r, AlreadyMonitored) and r.owner_token == winner_token for r in losers)
    assert sem.in_use() == 1
    assert owner(sem, "alice").token == winner_token


def test_semaphore_router_cap_is_enforced_per_router(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    for i in range(2):
        sem.acquire(f"a{i}", f"c{i}", "r1", global_limit=10, router_limit=2, ttl=TTL)
    with pytest.raises(CapacityError) as refused:
        sem.acquire("a2", "c2", "r1", global_limit=10, router_limit=2, ttl=TTL)
    assert (refused.value.scope, refused.value.cap, refused.value.in_use) == ("router", 2, 2)
    sem.acquire("b0", "c3", "r2", global_limit=10, router_limit=2, ttl=TTL)
    assert (sem.in_use("r1"), sem.in_use("r2"), sem.in_use()) == (2, 1, 3)


def test_semaphore_same_token_refresh_is_idempotent(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    fence = sem.acquire("s1:1", "alice", "r1", global_limit=1, router_limit=1, ttl=TTL)
    # a full semaphore must not refuse the holder's own refresh
    assert sem.acquire("s1:1", "alice", "r1", global_limit=1, router_limit=1, ttl=TTL) == fence
    assert sem.in_use() == 1
    other = sem.acquire("s2:1", "bob", "r2", global_limit=2, router_limit=None, ttl=TTL)
    assert other > fence


def test_semaphore_expiry_frees_the_slot_and_renew_then_fails(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    sem.acquire("old:1", "alice", "r1", global_limit=1, router_limit=None, ttl=SHORT_TTL)
    with pytest.raises(CapacityError):
        sem.acquire("new:1", "bob", "r1", global_limit=1, router_limit=None, ttl=TTL)

    def try_acquire() -> int | None:
        try:
            return sem.acquire("new:1", "bob", "r1", global_limit=1, router_limit=None, ttl=TTL)
        except CapacityError:
            return None

    wait_for(try_acquire, what="the expired slot to be reusable")
    assert renewed(sem, "old:1", "alice", "r1", TTL) is False
    assert sem.owner_of("alice") is None  # trimmed with its slot
    assert [h.token for h in sem.holders()] == ["new:1"]


def test_semaphore_expired_owner_lets_another_token_take_the_customer(
    redis_client: redis.Redis,
) -> None:
    sem = Semaphore(redis_client)
    first = sem.acquire("s1:1", "alice", "r1", global_limit=5, router_limit=None, ttl=SHORT_TTL)

    def try_acquire() -> int | None:
        try:
            return sem.claim("s1:2", "alice", "r1", RUN, global_limit=5, router_limit=None, ttl=TTL)
        except AlreadyMonitored:
            return None

    second = wait_for(try_acquire, what="the expired owner to be replaced")
    assert second > first
    leases = [("s1:1", "alice", "r1", RUN), ("s1:2", "alice", "r1", RUN)]
    assert sem.renew_many(leases, TTL) == [False, True]


def test_semaphore_release_only_by_the_holder(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    sem.acquire("s1:1", "alice", "r1", global_limit=5, router_limit=None, ttl=TTL)
    assert sem.release("s1:0", "alice", "r1") is False
    assert owner(sem, "alice").token == "s1:1" and sem.in_use() == 1
    assert sem.release("s1:1", "alice", "r1") is True
    assert sem.release("s1:1", "alice", "r1") is False
    assert sem.in_use() == 0 and sem.owner_of("alice") is None
    assert redis_client.hlen(keys.LEASES) == 0


def test_semaphore_released_slot_is_reusable_immediately(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    sem.acquire("s1:1", "alice", "r1", global_limit=1, router_limit=1, ttl=TTL)
    sem.release("s1:1", "alice", "r1")
    sem.acquire("s2:1", "bob", "r1", global_limit=1, router_limit=1, ttl=TTL)
    assert owner(sem, "bob").token == "s2:1"


def test_semaphore_flushdb_then_renew_reports_lost(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    sem.acquire("s1:1", "alice", "r1", global_limit=5, router_limit=None, ttl=TTL)
    sem.acquire("s2:1", "bob", "r1", global_limit=5, router_limit=None, ttl=TTL)
    redis_client.flushdb()
    leases = [("s1:1", "alice", "r1", RUN), ("s2:1", "bob", "r1", RUN)]
    assert sem.renew_many(leases, TTL) == [False, False]
    # the empty database is usable at once: no state outside Redis to resynchronise
    sem.acquire("s1:2", "alice", "r1", global_limit=5, router_limit=None, ttl=TTL)


def test_semaphore_owner_key_deleted_by_hand_loses_the_lease(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    fence = sem.acquire("s1:1", "alice", "r1", global_limit=5, router_limit=None, ttl=TTL)
    redis_client.delete(keys.customer_owner("alice"))
    assert renewed(sem, "s1:1", "alice", "r1", TTL) is False
    # the same token re-acquiring gets a NEW fence: the old one stays fenced out
    assert sem.acquire("s1:1", "alice", "r1", global_limit=5, router_limit=None, ttl=TTL) > fence
    assert sem.in_use() == 1


def test_semaphore_renew_many_answers_per_lease_in_order(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    for i in range(5):
        sem.claim(f"s{i}:1", f"c{i}", f"r{i % 2}", RUN, global_limit=10, router_limit=None, ttl=TTL)
    sem.release("s2:1", "c2", "r0")
    leases = [(f"s{i}:1", f"c{i}", f"r{i % 2}", RUN) for i in range(5)]
    assert sem.renew_many(leases, TTL) == [True, True, False, True, True]
    assert sem.renew_many([], TTL) == []


def test_semaphore_renew_pushes_the_expiry(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    sem.claim("s1:1", "alice", "r1", RUN, global_limit=5, router_limit=None, ttl=2.0)
    assert renewed(sem, "s1:1", "alice", "r1", 60.0)
    (holder,) = sem.holders()
    assert holder.expires_in > 30
    alice = owner(sem, "alice")
    assert alice.expires_in is not None and alice.expires_in > 30
    assert redis_client.zscore(keys.router_slots("r1"), "s1:1") == redis_client.zscore(
        keys.GLOBAL_SLOTS, "s1:1"
    )


def test_semaphore_takeover_evicts_the_previous_owner(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    old = sem.acquire("s1:1", "alice", "r1", global_limit=1, router_limit=None, ttl=TTL)
    with pytest.raises(AlreadyMonitored):
        sem.takeover(
            "s1:2", "alice", "r1", previous_token="someone-else", global_limit=1, router_limit=None, ttl=TTL
        )
    new = sem.takeover(
        "s1:2", "alice", "r1", previous_token="s1:1", global_limit=1, router_limit=None, ttl=TTL
    )
    assert new > old
    assert renewed(sem, "s1:1", "alice", "r1", TTL) is False
    assert owner(sem, "alice").token == "s1:2" and sem.in_use() == 1


def test_semaphore_holders_and_free_expired_for_the_reconciler(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    sem.acquire("dead:1", "alice", "r1", global_limit=5, router_limit=None, ttl=SHORT_TTL)
    sem.acquire("live:1", "bob", "r2", global_limit=5, router_limit=None, ttl=TTL)
    by_token = {h.token: h for h in sem.holders()}
    assert (by_token["live:1"].customer_id, by_token["live:1"].router_id) == ("bob", "r2")
    assert 0 < by_token["dead:1"].expires_in <= SHORT_TTL
    wait_for(lambda: sem.in_use() == 1, what="the short lease to expire")
    assert sem.free_expired() == ["dead:1"]
    assert sem.free_expired() == []
    assert sem.owner_of("alice") is None and sem.in_use("r1") == 0
    assert redis_client.zcard(keys.router_slots("r1")) == 0
    assert [h.token for h in sem.holders()] == ["live:1"]


def test_semaphore_refuses_nonsense_limits(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    with pytest.raises(ValueError):
        sem.acquire("t", "c", "r", global_limit=0, router_limit=None, ttl=TTL)
    with pytest.raises(ValueError):
        sem.acquire("t", "c", "r", global_limit=1, router_limit=0, ttl=TTL)
    with pytest.raises(ValueError):
        sem.acquire("t", "c", "r", global_limit=1, router_limit=None, ttl=0)


def test_semaphore_renew_many_keeps_order_across_chunks(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    count = RENEW_CHUNK * 2 + 50
    leases = [(f"s{i}:1", f"c{i}", f"r{i % 3}", RUN) for i in range(count)]
    for token, customer, router, claimant in leases:
        sem.claim(token, customer, router, claimant, global_limit=count, router_limit=None, ttl=TTL)
    lost = {3, RENEW_CHUNK, RENEW_CHUNK * 2 + 49}
    for i in lost:
        sem.release(*leases[i])
    assert sem.renew_many(leases, TTL) == [i not in lost for i in range(count)]


def test_semaphore_claimed_reservation_answers_to_its_claimant_only(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    limits: Limits = {"global_limit": 5, "router_limit": None, "ttl": TTL}
    fence = sem.acquire("s1:1", "alice", "r1", **limits)  # the reservation start makes
    assert sem.claim("s1:1", "alice", "r1", RUN, **limits) == fence  # the run that got the message
    assert sem.claim("s1:1", "alice", "r1", RUN, **limits) == fence  # its own claim again: fine
    # The same message delivered again, to another run: refused, and nothing it does counts.
    with pytest.raises(ClaimedElsewhere) as refused:
        sem.claim("s1:1", "alice", "r1", "host:2:run-b", **limits)
    assert refused.value.claimant == RUN
    assert renewed(sem, "s1:1", "alice", "r1", TTL, claimant="host:2:run-b") is False
    assert sem.release("s1:1", "alice", "r1", claimant="host:2:run-b") is False
    assert owner(sem, "alice").token == "s1:1" and sem.in_use() == 1
    # A reservation refresh (start racing the reconciler) keeps the claim.
    assert sem.acquire("s1:1", "alice", "r1", **limits) == fence
    assert renewed(sem, "s1:1", "alice", "r1", TTL) is True
    assert sem.release("s1:1", "alice", "r1", claimant=RUN) is True
    assert sem.in_use() == 0 and sem.owner_of("alice") is None


def test_semaphore_claim_retakes_a_reservation_that_expired_in_the_queue(redis_client: redis.Redis) -> None:
    sem = Semaphore(redis_client)
    reserved = sem.acquire("s1:1", "alice", "r1", global_limit=1, router_limit=None, ttl=SHORT_TTL)
    wait_for(lambda: sem.in_use() == 0, what="the reservation to expire")
    claimed = sem.claim("s1:1", "alice", "r1", RUN, global_limit=1, router_limit=None, ttl=TTL)
    assert claimed > reserved  # a fresh lease: whatever held the old fence is fenced out
    with pytest.raises(CapacityError):
        sem.acquire("s2:1", "bob", "r1", global_limit=1, router_limit=None, ttl=TTL)


def test_semaphore_now_is_the_server_clock(redis_client: redis.Redis) -> None:
    assert abs(Semaphore(redis_client).now_ms() - redis_ms(redis_client)) < 1000


def test_semaphore_watch_space_is_apart_from_the_monitors(redis_client: redis.Redis) -> None:
    """A router watch's lease takes no monitor slot and owns its router, not a customer."""
    from tasks.semaphore import WATCHES

    monitors = Semaphore(redis_client)
    watches = Semaphore(redis_client, space=WATCHES)
    monitors.acquire("s1:1", "r1", "r1", global_limit=1, router_limit=1, ttl=TTL)
    fence = watches.claim("watch:r1:a", "r1", "r1", RUN, global_limit=1000, router_limit=1, ttl=TTL)
    assert fence > 0
    assert monitors.in_use() == 1 and watches.in_use() == 1
    assert [h.token for h in monitors.holders()] == ["s1:1"]
    assert [(h.token, h.customer_id) for h in watches.holders()] == [("watch:r1:a", "r1")]
    with pytest.raises(AlreadyMonitored):  # one watch per router
        watches.acquire("watch:r1:b", "r1", "r1", global_limit=1000, router_limit=None, ttl=TTL)
    assert owner(watches, "r1").token == "watch:r1:a" and owner(monitors, "r1").token == "s1:1"
    assert watches.renew_many([("watch:r1:a", "r1", "r1", RUN)], TTL) == [True]
    assert watches.release("watch:r1:a", "r1", "r1", claimant=RUN)
    assert watches.in_use() == 0 and monitors.in_use() == 1
    assert redis_client.exists(keys.watch_owner("r1")) == 0
