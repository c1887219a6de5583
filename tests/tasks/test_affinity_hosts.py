"""Router affinity across hosts: 8 monitors worker processes named under 4 hosts
(`-n mK@hostN`), a control worker and beat, 4 simulated routers with 100 PPPoE monitors
each (and their watches). One module-scoped stack; the tests run in order on it.

Each router's cap is 3 API sessions (its routers row's max_api_sessions): with 8
processes the affinity places 2 on each router, which leaves room for a new host's
processes to join without moving anything.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from harness.hosts import (
    Hosts,
    add_simulated_router,
    api_sessions,
    consuming,
    fences_out_of_order,
    host_nodes,
    leaked_slots,
    redis_ms,
    status_by_customer,
    wait_producing,
)
from harness.polling import wait_for
from harness.seed import ROUTER_ID, ROUTER_PASSWORD
from models import Router
from routeros.simulator import Simulator, SimulatorConfig
from tasks import service, sessions
from tasks.affinity import holders_of
from tasks.semaphore import Semaphore
from tests.tasks.engine import Engine

CAP = 3
PER_ROUTER = 100
EXTRA = 10  # per router, started after the new host joins
TTL = 4.0
RECONCILE = 1.0
CONCURRENCY = 150  # threads per process: a router's 110 monitors fit in one process
HOSTS = host_nodes(4)


class Stack:
    def __init__(self, eng: Engine, sims: dict[str, Any], customers: dict[str, list[str]]) -> None:
        self.eng = eng
        self.sims = sims
        self.customers = customers  # router -> customer ids
        self.hosts = Hosts(eng.env, eng.tmp, CONCURRENCY, started=eng.processes.append)


@pytest.fixture(scope="module")
def stack(engine_factory: Any) -> Iterator[Stack]:
    eng = engine_factory(
        pppoe=PER_ROUTER + EXTRA,
        hotspot=0,
        static=0,
        MAX_CONCURRENT_MONITORS="1000",
        MONITOR_LEASE_TTL=str(TTL),
        AFFINITY_INTERVAL="0.5",
        AFFINITY_REFRESH="5",
        ROUTER_WATCH="true",
        MIKROTIK_TIMEOUT="5",
    )
    with sessions.db() as s:
        row = s.get(Router, ROUTER_ID)
        assert row is not None
        row.max_api_sessions = CAP
    sims: dict[str, Any] = {ROUTER_ID: eng.sim}
    customers = {ROUTER_ID: [eng.customer_id(u) for u in eng.usernames("pppoe")]}
    extra = []
    for n in range(2, 5):
        sim = Simulator(
            SimulatorConfig(
                pppoe=PER_ROUTER + EXTRA, hotspot=0, static=0, seed=7 + n, password=ROUTER_PASSWORD
            )
        )
        sim.start()
        extra.append(sim)
        router_id = f"sim-{n}"
        customers[router_id] = add_simulated_router(router_id, sim, max_api_sessions=CAP)
        sims[router_id] = sim
    st = Stack(eng, sims, customers)
    try:
        st.hosts.start([node for nodes in HOSTS.values() for node in nodes])
        eng.start_worker("default", concurrency=2, name="control")
        eng.start_beat()
        yield st
    finally:
        eng.stop_all()
        for sim in extra:
            sim.stop()


def assert_caps(st: Stack) -> dict[str, int]:
    counts = {router_id: api_sessions(sim.port) for router_id, sim in st.sims.items()}
    assert all(n <= CAP for n in counts.values()), counts
    for router_id in st.sims:
        assert len(holders_of(st.eng.redis, router_id)) <= CAP
    return counts


def started(st: Stack) -> list[str]:
    return [cid for ids in st.customers.values() for cid in ids[:PER_ROUTER]]


def test_affinity_hosts_each_router_sees_at_most_its_cap(stack: Stack) -> None:
    since = redis_ms(stack.eng.redis)
    for cid in started(stack):
        service.start(cid, requested_by="affinity-test")
    wait_producing(stack.eng.redis, started(stack), since, 90.0)
    counts = assert_caps(stack)
    print(f"\nAPI sessions per router with 8 processes on 4 hosts: {counts} (cap {CAP})")
    status = status_by_customer()
    for router_id, ids in stack.customers.items():
        workers = {status[cid]["worker"] for cid in ids[:PER_ROUTER]}
        assert None not in workers and len(workers) <= CAP, (router_id, workers)
        # Named by node, and only processes that hold the router run its monitors.
        assert workers <= set(holders_of(stack.eng.redis, router_id)), (router_id, workers)


def test_affinity_hosts_killed_host_monitors_move_within_the_bound(stack: Stack) -> None:
    eng = stack.eng
    before = status_by_customer()
    victims = HOSTS["host1"]
    moved = [cid for cid, m in before.items() if m["worker"] in victims]
    assert moved, "host1 ran no monitor"
    killed_ms = redis_ms(eng.redis)
    stack.hosts.kill(victims, signal.SIGKILL)
    bound = TTL + RECONCILE + 5.0
    took = wait_producing(stack.eng.redis, moved, killed_ms, bound + 10.0)  # headroom for a loaded box
    print(
        f"\nhost1's {len(moved)} monitors all produce again {took:.1f}s after the kill (bound {bound:.0f}s)"
    )
    assert took <= bound + 10.0
    wait_producing(stack.eng.redis, started(stack), killed_ms, 20.0)
    # No duplicate producer: in each stream, fences only go up (one producer at a time).
    assert fences_out_of_order(eng.redis, started(stack), killed_ms - 5000) == {}
    # No slot leaked: the semaphore's holders are the running monitors, one each.
    sem = Semaphore(eng.redis)

    def settled() -> bool:
        return len(sem.holders()) == len(started(stack))

    wait_for(settled, 10.0, what="the semaphore to hold one slot per running monitor")
    assert leaked_slots(eng.redis) == 0
    after = status_by_customer()
    assert all(after[cid]["live"] for cid in started(stack))
    assert not {after[cid]["worker"] for cid in started(stack)} & set(victims)
    assert_caps(stack)


def test_affinity_hosts_new_host_moves_nothing_and_takes_new_starts(stack: Stack) -> None:
    eng = stack.eng
    before = status_by_customer()
    newcomers = ["m9@host5", "m10@host5"]
    stack.hosts.start(newcomers)

    def joined() -> bool:
        return all(any(n in holders_of(eng.redis, r) for r in stack.sims) for n in newcomers)

    wait_for(joined, 15.0, what="the new host's processes to hold a router")
    holds = [(n, r) for r in stack.sims for n in holders_of(eng.redis, r) if n in newcomers]
    # Held in Redis is not yet consumed: the keeper's add_consumer runs on the worker's loop.
    wait_for(lambda: consuming(holds), 20.0, step=0.5, what="the new host to consume its routers' queues")
    fresh = [cid for ids in stack.customers.values() for cid in ids[PER_ROUTER:]]
    # One start at a time, each until it produces: a worker's blocking pop takes in a
    # queue it was just told to consume from a second or more later, and until then
    # the older holders alone take the router's messages.
    for cid in fresh:
        since = redis_ms(eng.redis)
        service.start(cid, requested_by="affinity-test")
        wait_producing(stack.eng.redis, [cid], since, 15.0)
    after = status_by_customer()
    for cid in started(stack):
        assert (after[cid]["attempt"], after[cid]["worker"]) == (
            before[cid]["attempt"],
            before[cid]["worker"],
        )
    landed = {after[cid]["worker"] for cid in fresh}
    assert landed & set(newcomers), landed
    assert_caps(stack)
