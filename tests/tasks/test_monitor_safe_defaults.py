"""Safe defaults against a real worker, beat and simulators.

- A rate no link can carry (400 digits, nan, negative...) costs that one sample, with a
  warning, never the monitor: the samples after it stream on
  (docs/routeros.md, Bounds on replies; Simulator.inject_monitor_values).
- A router logged in to without API-SSL gets one warning per worker process, naming it
  and never its password; a router reached over API-SSL gets none
  (docs/routeros.md, Login).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from harness.seed import ROUTER_ID, ROUTER_PASSWORD
from routeros.simulator import Simulator, SimulatorConfig
from tasks import service
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor, start_monitors, wait_resumed
from tests.tasks.rows import add_pppoe_customer, add_router
from tests.tasks.streams import customer_entries, matches, sample_after, session_samples, wait_entry

WORKER = "safe-defaults"
PLAIN_ROUTER = "plain-2"  # a second router without API-SSL
SSL_ROUTER = "ssl-3"  # a router reached over API-SSL
ABSURD = ("1" * 400, "9" * 300, "1e400", "nan", "-1")
SKIPPED = "unusable router row, sample skipped"
CLEARTEXT = "sends the password unencrypted"


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=4, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=8, name=WORKER)
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


def _router_sim(**config: Any) -> Simulator:
    sim = Simulator(SimulatorConfig(pppoe=2, hotspot=0, static=0, seed=9, password=ROUTER_PASSWORD, **config))
    sim.start()
    return sim


@pytest.fixture(scope="module")
def plain(engine: Engine) -> Iterator[Simulator]:
    sim = _router_sim()
    try:
        add_router(PLAIN_ROUTER, sim.port)
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def over_ssl(engine: Engine) -> Iterator[Simulator]:
    sim = _router_sim(tls=True)
    assert sim.ssl_port is not None and sim.cafile is not None
    try:
        add_router(SSL_ROUTER, sim.ssl_port, tls=True, tls_mode="verify", tls_ca=sim.cafile)
        yield sim
    finally:
        sim.stop()


def _customer_on(router_id: str, sim: Simulator, index: int) -> str:
    record = [c for c in sim.customers()["customers"] if c["service_type"] == "pppoe"][index]
    username = f"{router_id}-{record['pppoe_username']}"
    return add_pppoe_customer(router_id, username, record["name"], pppoe_username=record["pppoe_username"])


def _stop(eng: Engine, customer_id: str, session_id: str) -> None:
    service.stop(customer_id, requested_by="safe-defaults-test")
    wait_entry(eng.redis, customer_id, matches(type="stopped", session_id=session_id), 10.0, "stopped")


def test_monitor_absurd_rates_skip_their_samples_and_the_monitor_keeps_streaming(engine: Engine) -> None:
    username = engine.usernames("pppoe")[0]
    cid = engine.customer_id(username)
    session_id = start_monitor(engine, cid, requested_by="safe-defaults-test").session_id

    engine.sim.inject_monitor_values(engine.customers[username]["target"], "rx-bits-per-second", *ABSURD)
    # One row a second, each skipped with one warning (before: OverflowError ended the monitor).
    wait_for(
        lambda: engine.log_of(WORKER).count(SKIPPED) >= len(ABSURD),
        len(ABSURD) + 15.0,
        what="a warning for every absurd sample",
    )
    last = max(e["seq"] for e in session_samples(engine.redis, cid, session_id))
    after = wait_entry(
        engine.redis,
        cid,
        sample_after(session_id, last),
        10.0,
        "a sample after the absurd ones",
    )

    assert engine.log_of(WORKER).count(SKIPPED) == len(ABSURD)
    kinds = {e["type"] for e in customer_entries(engine.redis, cid) if e["session_id"] == session_id}
    assert kinds == {"started", "traffic"}, kinds  # no stopped, not even an offline
    values = [e["rx_bits_per_second"] for e in session_samples(engine.redis, cid, session_id)]
    assert all(v.isdigit() and len(v) < 16 for v in values), [v[:20] for v in values]
    assert after["upload_bps"] == int(after["rx_bits_per_second"])
    _stop(engine, cid, session_id)


def test_monitor_cleartext_login_warns_once_per_router_and_worker_never_over_api_ssl(
    engine: Engine, plain: Simulator, over_ssl: Simulator
) -> None:
    customers = [engine.customer_id(u) for u in engine.usernames("pppoe")[1:3]]
    customers += [_customer_on(PLAIN_ROUTER, plain, i) for i in range(2)]
    customers += [_customer_on(SSL_ROUTER, over_ssl, i) for i in range(2)]
    running = start_monitors(engine, customers, requested_by="safe-defaults-test", timeout=15.0)
    started = {cid: m.session_id for cid, m in running.items()}

    # Every router drops us: the re-dials log in again, and must not warn again.
    routers = (engine.sim, plain, over_ssl)
    logins = [sim.stats()["logins"] for sim in routers]
    for sim in routers:
        sim.close_connections()
    for cid, session_id in started.items():
        wait_resumed(engine, cid, session_id, 20.0)
    assert [sim.stats()["logins"] - before for sim, before in zip(routers, logins)] == [1, 1, 1]
    assert over_ssl.stats()["sessions_by_service"]["api-ssl"] == 1

    log = engine.log_of(WORKER)
    warnings = [line for line in log.splitlines() if CLEARTEXT in line]
    assert len(warnings) == 2, warnings
    assert sum(f"router {ROUTER_ID} (127.0.0.1:{engine.sim.port})" in w for w in warnings) == 1, warnings
    assert sum(f"router {PLAIN_ROUTER} (127.0.0.1:{plain.port})" in w for w in warnings) == 1, warnings
    assert all("WARNING" in w and "MIKROTIK_TLS=true" in w and "8729" in w for w in warnings), warnings
    assert not [w for w in warnings if SSL_ROUTER in w]
    assert ROUTER_PASSWORD not in engine.logs()
    for cid, session_id in started.items():
        _stop(engine, cid, session_id)
