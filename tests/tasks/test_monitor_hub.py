"""The process-wide router hub against the simulator: connection economy and failures."""

from __future__ import annotations

import time

import pytest

from harness.polling import wait_for
from routeros import LoginError, RouterClient, RouterEndpoint, RouterError, Stream, UnreachableError
from routeros.simulator import Simulator, SimulatorConfig
from tasks.hub import RouterHandle, RouterHub


@pytest.fixture(scope="module")
def sim():
    with Simulator(
        SimulatorConfig(pppoe=6, hotspot=0, static=0, max_sessions=20, seed=3, password="admin")
    ) as s:
        yield s


def _endpoint(sim: Simulator) -> RouterEndpoint:
    return RouterEndpoint("127.0.0.1", sim.port, "admin", "admin", timeout=2, name="sim")


def _monitor(handle: RouterHandle, interface: str) -> Stream:
    """monitor-traffic of one interface on the handle's shared connection."""
    stream = handle.stream("/interface/monitor-traffic", {"interface": interface, "interval": "1"}, wait=5)
    assert stream is not None, "still connecting after wait=5"
    return stream


@pytest.mark.parametrize("per_router", [1, 2])
def test_monitor_hub_caps_connections_per_router_whatever_the_monitors(
    sim: Simulator, per_router: int
) -> None:
    hub = RouterHub(per_router)
    handles = [hub.checkout(_endpoint(sim)) for _ in range(12)]
    try:
        targets = [c["target"] for c in sim.customers()["customers"]]
        streams = [_monitor(h, targets[i % len(targets)]) for i, h in enumerate(handles)]
        for stream in streams:
            event = stream.get(timeout=5)
            assert event is not None and event.kind == "data"
        assert sim.stats()["open_sessions"] == per_router
        assert hub.stats()["sim"] == {"connections": per_router, "users": 12}
        for stream in streams:
            stream.cancel()
    finally:
        for h in handles:
            h.close()
    # Nobody uses the router any more: its connections are given back.
    wait_for(lambda: sim.stats()["open_sessions"] == 0, 5.0, what="connections closed")
    hub.close()


def test_monitor_hub_login_wait_is_bounded_and_failure_is_shared() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    dials: list[RouterEndpoint] = []

    def counting_factory(endpoint: RouterEndpoint) -> RouterClient:
        dials.append(endpoint)
        return RouterClient(endpoint)

    hub = RouterHub(1, client_factory=counting_factory)
    first, second = (hub.checkout(RouterEndpoint("127.0.0.1", port, timeout=1)) for _ in "ab")
    with pytest.raises(UnreachableError):
        first.client(wait=5)
    # The second monitor learns the same failure instead of dialling a dead router again.
    with pytest.raises(UnreachableError):
        second.client(wait=5)
    assert len(dials) == 1
    first.close()
    second.close()
    hub.close()


def test_monitor_hub_does_not_block_callers_past_their_wait(sim: Simulator) -> None:
    hub = RouterHub(1)
    handle = hub.checkout(_endpoint(sim))
    sim.stall(True)
    try:
        # None = returned while the login still waits on the router, not after it.
        assert handle.client(wait=0.2) is None
    finally:
        sim.stall(False)
    assert wait_for(lambda: handle.client(wait=0.2), 5.0, what="login after the stall")
    handle.close()
    hub.close()


def _try_client(handle: RouterHandle) -> RouterClient | None:
    try:
        return handle.client(wait=0.1)
    except RouterError:
        return None


def test_monitor_hub_refused_logins_back_off_once_for_every_caller(sim: Simulator) -> None:
    dials: list[RouterEndpoint] = []

    def counting_factory(endpoint: RouterEndpoint) -> RouterClient:
        dials.append(endpoint)
        return RouterClient(endpoint)

    hub = RouterHub(1, client_factory=counting_factory)
    handles = [hub.checkout(_endpoint(sim)) for _ in range(50)]
    sim.refuse_logins(True)
    try:
        # 50 monitors asking every 50 ms for 6 s: the router sees the hub's attempts only,
        # after delays of at least 0.5, 1, 2 and 4 s (tasks/hub.py): at most 4.
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            for handle in handles:
                assert _try_client(handle) is None
            time.sleep(0.05)
        assert 1 <= len(dials) <= 4, len(dials)
        with pytest.raises(LoginError, match=r"invalid user name or password \(6\)"):
            handles[-1].client(wait=0.1)
        waits = [h.retry_in() for h in handles]
        assert max(waits) - min(waits) < 0.5 and max(waits) > 0  # one schedule, shared
        assert "invalid user name or password" in handles[0].last_error()
    finally:
        sim.refuse_logins(False)
    # Once the router takes logins, the next attempt brings every monitor back on one client.
    client = wait_for(lambda: _try_client(handles[0]), 35.0, what="the login after the backoff")
    assert all(_try_client(h) is client for h in handles)
    assert handles[0].retry_in() == 0
    assert sim.stats()["open_sessions"] == 1
    for h in handles:
        h.close()
    hub.close()
