"""Several routers behind one worker: a router whose host name does not resolve, two
routers serving the same interface name, a customer moved to another router. Real
worker, beat and two simulators.

The worker's router hub keys connections by endpoint (host, port, credentials, TLS,
encoding), never by interface or customer: each customer's samples come from its own
router, and one router's trouble is nobody else's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from harness.polling import wait_for
from harness.seed import ROUTER_ID, ROUTER_PASSWORD
from routeros.simulator import Simulator, SimulatorConfig
from tasks import runtime, service, sessions
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor, wait_next_attempt
from tests.tasks.rows import add_pppoe_customer, add_router
from tests.tasks.streams import customer_entries, matches, session_samples, wait_entry

SHARED = "shared.user"  # a PPPoE account of the same name on both routers
OTHER_ROUTER = "sim-2"
UNRESOLVABLE = "no-such-router.invalid"  # .invalid never resolves (RFC 2606)
RECONCILE = 1.0


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=4, hotspot=0, static=0, simulator={"pppoe_names": ((SHARED, "Shared on A"),)})
    eng.start_worker("monitors", concurrency=8, name="routers-a")
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def other(engine: Engine) -> Iterator[Simulator]:
    """A second router: another seed (other traffic), the same SHARED account."""
    sim = Simulator(
        SimulatorConfig(
            pppoe=2,
            hotspot=0,
            static=0,
            seed=8,
            password=ROUTER_PASSWORD,
            pppoe_names=((SHARED, "Shared on B"),),
        )
    )
    sim.start()
    try:
        add_router(OTHER_ROUTER, sim.port)
        yield sim
    finally:
        sim.stop()


def _wait_samples(eng: Engine, customer_id: str, session_id: str, count: int) -> None:
    def enough() -> bool:
        return len(session_samples(eng.redis, customer_id, session_id)) >= count

    wait_for(enough, count + 8.0, what=f"{count} samples")


def test_monitor_routers_same_interface_name_each_sampled_from_its_own_router(
    engine: Engine, other: Simulator
) -> None:
    on_a = engine.customer_id(SHARED)
    on_b = add_pppoe_customer(OTHER_ROUTER, SHARED, "Shared on B")
    sessions_by_customer = {
        cid: service.start(cid, requested_by="routers-test").session_id for cid in (on_a, on_b)
    }
    for cid, session_id in sessions_by_customer.items():
        _wait_samples(engine, cid, session_id, 5)
    a = session_samples(engine.redis, on_a, sessions_by_customer[on_a])
    b = session_samples(engine.redis, on_b, sessions_by_customer[on_b])
    # Same interface name, own stream key, own router...
    assert {e["interface"] for e in a} == {e["interface"] for e in b} == {f"<pppoe-{SHARED}>"}
    assert {e["router"] for e in a} == {"sim-router"} and {e["router"] for e in b} == {OTHER_ROUTER}
    assert {e["customer_id"] for e in a} == {on_a} and {e["customer_id"] for e in b} == {on_b}
    # ...and each router serves exactly one monitor-traffic stream on one session of ours.
    for sim in (engine.sim, other):
        stats = sim.stats()
        assert (stats["sessions_by_service"]["api"], stats["monitor_streams"]) == (1, 1), stats
    # The two routers' traffic differs (other seeds): the values are not one router's twice.
    values_a = [(e["download_bps"], e["upload_bps"]) for e in a]
    values_b = [(e["download_bps"], e["upload_bps"]) for e in b]
    assert not set(values_a) & set(values_b), (values_a, values_b)
    for cid, session_id in sessions_by_customer.items():
        service.stop(cid, requested_by="routers-test")
        wait_entry(engine.redis, cid, matches(type="stopped", session_id=session_id), 5.0, "stopped")


def test_monitor_routers_unresolvable_host_is_offline_and_others_keep_sampling(engine: Engine) -> None:
    add_router("sim-dns", 8728, host=UNRESOLVABLE)
    lost = add_pppoe_customer("sim-dns", "dns.user", "Nowhere Resolves")
    fine = engine.customer_id(engine.usernames("pppoe")[0])
    fine_session = start_monitor(engine, fine, requested_by="routers-test", timeout=5.0).session_id
    lost_session = service.start(lost, requested_by="routers-test").session_id
    offline = wait_entry(
        engine.redis, lost, matches(type="offline", session_id=lost_session), 10.0, "offline"
    )
    assert offline["reason"].startswith(f"router unreachable: cannot resolve {UNRESOLVABLE!r} (sim-dns): ")
    # The other router's monitor goes on, untroubled, while the lost one retries.
    _wait_samples(engine, fine, fine_session, len(session_samples(engine.redis, fine, fine_session)) + 4)
    kinds = {e["type"] for e in customer_entries(engine.redis, fine) if e["session_id"] == fine_session}
    assert kinds == {"started", "traffic"}, kinds
    assert any(m["session_id"] == lost_session and m["live"] for m in service.status()["monitors"])
    for cid, session_id in ((fine, fine_session), (lost, lost_session)):
        service.stop(cid, requested_by="routers-test")
        wait_entry(engine.redis, cid, matches(type="stopped", session_id=session_id), 5.0, "stopped")


def test_monitor_routers_customer_moved_to_another_router_runs_there_from_the_next_attempt(
    engine: Engine, other: Simulator
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[1])
    running = start_monitor(engine, cid, requested_by="routers-test", timeout=5.0)
    session_id = running.session_id
    assert running.first["router"] == "sim-router"
    # The customer's account moves to router B (same PPPoE name there).
    with sessions.db() as s:
        s.execute(
            text("UPDATE customers SET mikrotik_id = :r, pppoe_username = :u WHERE id = :id"),
            {"r": OTHER_ROUTER, "u": other.customers()["customers"][0]["pppoe_username"], "id": cid},
        )
    # The running attempt stays where it started; the next one (after a hand-over) moves.
    engine.hand_over("routers-a", to="routers-b")
    sample = wait_next_attempt(engine, running, RECONCILE + 15.0)
    assert sample["router"] == OTHER_ROUTER
    row = sessions.get(session_id)
    assert row is not None and (row.attempt, row.router_id) == (2, OTHER_ROUTER)
    # Its slot is counted on the router it runs on now.
    sem = runtime.current().semaphore
    assert (sem.in_use(OTHER_ROUTER), sem.in_use(ROUTER_ID)) == (1, 0)
    service.stop(cid, requested_by="routers-test")
    wait_entry(engine.redis, cid, matches(type="stopped", session_id=session_id), 5.0, "stopped")
