"""The affinity round (tasks/affinity.py) against real Redis: caps, coverage, balance,
stickiness, expiry and the release of an idle surplus hold."""

from __future__ import annotations

import threading
from collections import Counter

import redis

from harness.polling import wait_for
from tasks import keys
from tasks.affinity import Affinity, RoundResult, holders_of, max_holders

TTL = 2.0


def nodes(client: redis.Redis, count: int, ttl: float = TTL, host: str = "host") -> list[Affinity]:
    return [Affinity(client, f"m{i}@{host}{i // 2}", ttl) for i in range(count)]


def settle(procs: list[Affinity], limits: dict[str, int], rounds: int = 20) -> dict[str, RoundResult]:
    """Every process runs `rounds` rounds in turn (as their keepers would, one a second)."""
    last: dict[str, RoundResult] = {}
    for _ in range(rounds):
        for p in procs:
            last[p.node] = p.round(limits, held=last[p.node].held if p.node in last else ())
    return last


def layout(client: redis.Redis, routers: list[str]) -> dict[str, list[str]]:
    return {r: sorted(holders_of(client, r)) for r in routers}


def test_affinity_max_holders_divides_the_cap_by_connections_per_process() -> None:
    assert max_holders(2, 1) == 2
    assert max_holders(5, 2) == 2
    assert max_holders(1, 3) == 1  # a router is always covered by one process


def test_affinity_concurrent_takers_respect_each_cap(redis_client: redis.Redis) -> None:
    limits = {"r1": 2, "r2": 1, "r3": 3}
    procs = nodes(redis_client, 12)
    errors: list[BaseException] = []

    def run(p: Affinity) -> None:
        try:
            client = redis.Redis(connection_pool=redis_client.connection_pool)
            mine = Affinity(client, p.node, TTL)
            held: frozenset[str] = frozenset()
            for _ in range(15):
                held = mine.round(limits, held=held).held
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = layout(redis_client, list(limits))
    assert {r: len(h) for r, h in got.items()} == limits  # 12 processes fill every cap, no more


def test_affinity_covers_routers_without_holders_first(redis_client: redis.Redis) -> None:
    limits = {f"r{i}": 2 for i in range(4)}
    procs = nodes(redis_client, 4)
    # One round each: every process takes one router, and no router is left without one
    # while another has two.
    for p in procs:
        p.round(limits)
    assert sorted(len(h) for h in layout(redis_client, list(limits)).values()) == [1, 1, 1, 1]


def test_affinity_balances_processes_over_routers(redis_client: redis.Redis) -> None:
    limits = {f"r{i}": 2 for i in range(4)}
    procs = nodes(redis_client, 8)
    settle(procs, limits)
    got = layout(redis_client, list(limits))
    assert all(len(h) == 2 for h in got.values())
    load = Counter(n for h in got.values() for n in h)
    assert sorted(load.values()) == [1] * 8


def test_affinity_spreads_a_routers_holders_over_hosts(redis_client: redis.Redis) -> None:
    limits = {f"r{i}": 2 for i in range(4)}
    procs = nodes(redis_client, 8)  # two processes on each of four hosts
    settle(procs, limits)
    got = layout(redis_client, list(limits))
    for router, holders in got.items():
        assert len({h.split("@")[1] for h in holders}) == 2, (router, holders)  # one host's death leaves one


def test_affinity_an_idle_process_leaves_a_second_hold_to_another_host(redis_client: redis.Redis) -> None:
    # The first two processes to run are on one host: the second leaves the router's
    # other hold to the idle process of another host, which takes it at its round.
    order = [Affinity(redis_client, n, TTL) for n in ("a1@hostA", "a2@hostA", "b1@hostB")]
    settle(order, {"p0": 2}, rounds=3)
    assert {h.split("@")[1] for h in holders_of(redis_client, "p0")} == {"hostA", "hostB"}


def test_affinity_one_host_still_fills_every_router(redis_client: redis.Redis) -> None:
    # The preference for other hosts never keeps a router below its share.
    single = [Affinity(redis_client, f"s{i}@only", TTL) for i in range(4)]
    others = {f"q{i}": 2 for i in range(2)}
    settle(single, others)
    assert all(len(h) == 2 for h in layout(redis_client, list(others)).values())


def test_affinity_assignment_is_sticky_and_survives_a_restart(redis_client: redis.Redis) -> None:
    limits = {f"r{i}": 2 for i in range(4)}
    procs = nodes(redis_client, 8)
    settle(procs, limits)
    before = layout(redis_client, list(limits))
    # A new process joins (cap 3 leaves room): nobody moves, it only adds itself.
    wider = {r: 3 for r in limits}
    newcomer = Affinity(redis_client, "m9@host9", TTL)
    settle([*procs, newcomer], wider, rounds=5)
    after = layout(redis_client, list(limits))
    for r in limits:
        assert set(before[r]) <= set(after[r])
    assert any(newcomer.node in h for h in after.values())
    # Everybody restarts within the TTL under the same node names: same holds.
    restarted = [Affinity(redis_client, p.node, TTL) for p in [*procs, newcomer]]
    settle(restarted, wider, rounds=3)
    assert layout(redis_client, list(limits)) == after


def test_affinity_expiry_frees_a_dead_process_routers(redis_client: redis.Redis) -> None:
    limits = {"r1": 1, "r2": 1}
    short = 0.6
    dead, alive = Affinity(redis_client, "m1@host1", short), Affinity(redis_client, "m2@host2", short)
    settle([dead, alive], limits, rounds=3)
    assert len(alive.round(limits).held) == 1
    dead_routers = [r for r, h in layout(redis_client, list(limits)).items() if dead.node in h]
    assert len(dead_routers) == 1

    def taken_over() -> bool:
        return alive.round(limits).held == frozenset(limits)

    wait_for(taken_over, 5 * short + 5, step=0.1, what="the survivor to take the dead process's router")


def test_affinity_releases_an_idle_surplus_hold_and_keeps_a_busy_one(redis_client: redis.Redis) -> None:
    limits = {f"r{i}": 2 for i in range(2)}
    first = Affinity(redis_client, "m1@host1", TTL)
    # Alone, it covers both routers.
    settle([first], limits, rounds=3)
    assert first.round(limits).held == frozenset(limits)
    # Three more processes: the first now holds two more routers than the idle ones. It
    # runs monitors on r0 only, so it gives up r1 and keeps r0.
    others = [Affinity(redis_client, f"m{i}@host{i}", TTL) for i in range(2, 5)]
    for _ in range(4):
        for p in others:
            p.round(limits)
        result = first.round(limits, busy={"r0"})
    assert result.held == frozenset({"r0"})
    got = layout(redis_client, list(limits))
    assert first.node not in got["r1"] and got["r1"]
    assert all(len(h) <= 2 for h in got.values())


def test_affinity_lowered_cap_hands_over_the_last_ranked_busy_holder(redis_client: redis.Redis) -> None:
    procs = nodes(redis_client, 3)
    settle(procs, {"r1": 3}, rounds=3)
    assert len(holders_of(redis_client, "r1")) == 3
    results = [p.round({"r1": 1}, busy={"r1"}) for p in procs]
    lost = [p.node for p, r in zip(procs, results) if "r1" in r.lost]
    assert len(lost) == 2
    assert len(holders_of(redis_client, "r1")) == 1
    # The one it keeps is the first by the hash: the same one every time.
    assert holders_of(redis_client, "r1")[0] not in lost


def test_affinity_retakes_a_busy_router_it_lost_when_the_cap_has_room(redis_client: redis.Redis) -> None:
    proc = Affinity(redis_client, "m1@host1", TTL)
    proc.round({"r1": 2})
    redis_client.delete(keys.affinity_holders("r1"))  # as if the hold expired in an outage
    result = proc.round({"r1": 2}, busy={"r1"})
    assert "r1" in result.held and not result.lost


def test_affinity_gives_up_an_idle_router_that_is_no_longer_known(redis_client: redis.Redis) -> None:
    proc = Affinity(redis_client, "m1@host1", TTL)
    held = proc.round({"r1": 2, "gone": 2}).held
    held = proc.round({"r1": 2, "gone": 2}, held=held).held
    assert held == {"r1", "gone"}
    busy = proc.round({"r1": 2}, busy={"gone"}, held=held)
    assert "gone" in busy.held  # a watch still runs there: kept until it ends
    idle = proc.round({"r1": 2}, held=busy.held)
    assert idle.held == {"r1"} and "gone" in idle.released
