"""Refusals on demand: missing permissions, refused logins, a closed API port, max-sessions used up.

Exact replies are those of docs/routeros.md (Failed login, Permissions, max-sessions); where
the router's behaviour is unverified, every simulator option is exercised.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from routeros import LoginError, RouterClient, RouterError, TrapError, UnreachableError
from routeros.simulator import Simulator, SimulatorConfig
from tests.routeros.client_support import endpoint_for, next_event
from tests.routeros.wire import WireClient

NO_PERMISSION = "=message=not enough permissions (9)"


def small(**overrides: Any) -> Simulator:
    fields: dict[str, Any] = dict(pppoe=2, hotspot=0, static=1, seed=2)
    fields.update(overrides)
    return Simulator(SimulatorConfig(**fields))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with small() as s:
        yield s


def first_pppoe(sim: Simulator) -> str:
    return next(c["target"] for c in sim.customers()["customers"] if c["service_type"] == "pppoe")


def refused(sim: Simulator, port: int | None = None) -> bool:
    """True when a TCP connect to the simulator is refused (nothing listens)."""
    try:
        socket.create_connection((sim.host, port or sim.port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# ---- permissions -------------------------------------------------------------------------


def test_permissions_denied_commands_trap_without_category_then_done() -> None:
    denied = ("/interface/monitor-traffic", "/queue/simple/print")
    with small(denied_commands=denied) as sim, WireClient(sim.host, sim.port) as c:
        c.login()
        name = first_pppoe(sim)
        assert c.command("/interface/monitor-traffic", f"=interface={name}", ".tag=m") == [
            ["!trap", ".tag=m", NO_PERMISSION],
            ["!done", ".tag=m"],
        ]
        # getall is print's alias: denied with it.
        for command in ("/queue/simple/print", "/queue/simple/getall"):
            assert c.command(command) == [["!trap", NO_PERMISSION], ["!done"]]
        # Everything else still works on the same session.
        assert c.command("/interface/print", f"?name={name}", "=.proplist=name") == [
            ["!re", f"=name={name}"],
            ["!done"],
        ]
        assert sim.stats()["running_commands"] == 0


def test_permissions_runtime_toggle_reaches_our_client_as_trap_error(sim: Simulator) -> None:
    name = first_pppoe(sim)
    with RouterClient(endpoint_for(sim)) as client:
        sim.deny_commands("/interface/monitor-traffic", "/queue/simple/print")
        with pytest.raises(TrapError) as info:
            client.call("/queue/simple/print")
        assert (info.value.message, info.value.category) == ("not enough permissions (9)", None)
        stream = client.stream("/interface/monitor-traffic", {"interface": name})
        event, seen = next_event(stream, {"trap", "done", "failed"}, timeout=5)
        assert event.kind == "trap" and event.message == "not enough permissions (9)" and not seen
        sim.deny_commands()  # allowed again
        assert client.call("/queue/simple/print", proplist=["name"])
        assert client.stats()["reconnects"] == 0  # a refused command is not a broken link


def test_permissions_unknown_command_is_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="/no/such"):
        small(denied_commands=("/no/such",))
    with small() as sim, pytest.raises(ValueError, match="/interface/frob"):
        sim.deny_commands("/interface/frob")


# ---- refused logins ----------------------------------------------------------------------


def test_refuse_logins_answers_like_a_wrong_password_and_keeps_sessions(sim: Simulator) -> None:
    with WireClient(sim.host, sim.port) as old, WireClient(sim.host, sim.port) as new:
        old.login()
        sim.refuse_logins(True)
        assert new.login() == [["!trap", "=message=invalid user name or password (6)"], ["!done"]]
        assert old.command("/system/identity/print")[-1] == ["!done"]  # logged-in session unaffected
        with pytest.raises(LoginError, match=r"invalid user name or password \(6\)"):
            RouterClient(endpoint_for(sim)).connect()
        sim.refuse_logins(False)
        assert new.login() == [["!done"]]  # same socket: failed_login "keep"
    assert sim.stats()["failed_logins"] == 2


def test_refuse_logins_on_a_pre_643_router_says_cannot_log_in() -> None:
    with small(version="6.40") as sim:
        sim.refuse_logins(True)
        with pytest.raises(LoginError, match="cannot log in"):
            RouterClient(endpoint_for(sim)).connect()


def test_refuse_logins_with_failed_login_close_closes_the_socket() -> None:
    with small(failed_login="close") as sim, WireClient(sim.host, sim.port) as c:
        sim.refuse_logins(True)
        assert c.login()[0][0] == "!trap"
        assert c.wait_closed()


# ---- closed API port -----------------------------------------------------------------------


def test_refuse_connections_closes_the_port_and_reopens_the_same_one(sim: Simulator) -> None:
    port = sim.port
    with WireClient(sim.host, sim.port) as open_session:
        open_session.login()
        sim.refuse_connections(True)
        assert refused(sim)
        with pytest.raises(UnreachableError):
            RouterClient(endpoint_for(sim)).connect()
        assert open_session.command("/system/identity/print")[-1] == ["!done"]
        sim.refuse_connections(False)
        assert sim.port == port
        with RouterClient(endpoint_for(sim)) as client:
            assert client.call("/system/identity/print") == [{"name": "sim-router"}]


def test_refuse_connections_closes_api_ssl_too() -> None:
    with small(tls=True) as sim:
        assert sim.ssl_port is not None
        sim.refuse_connections(True)
        assert refused(sim) and refused(sim, sim.ssl_port)
        sim.refuse_connections(False)
        assert not refused(sim, sim.ssl_port)


# ---- foreign sessions and max-sessions ---------------------------------------------------------


def test_foreign_sessions_use_up_max_sessions_and_release(sim: Simulator) -> None:
    sim.hold_foreign_sessions(19)
    stats = sim.stats()
    assert stats["foreign_sessions"] == {"api": 19, "api-ssl": 0} and stats["open_sessions"] == 0
    with WireClient(sim.host, sim.port) as last:  # the 20th session of the default limit
        assert last.login() == [["!done"]]
        with WireClient(sim.host, sim.port) as extra:
            assert extra.wait_closed() and extra.read(0) is None  # default over_limit "close"
        with pytest.raises(UnreachableError):
            RouterClient(endpoint_for(sim)).connect()
    assert sim.stats()["refused_connections"] == 2
    sim.hold_foreign_sessions(0)
    with RouterClient(endpoint_for(sim)) as client:
        assert client.call("/system/identity/print")


def test_foreign_sessions_count_per_service() -> None:
    with small(tls=True, tls_mode="anon-dh") as sim:
        sim.hold_foreign_sessions(20, service="api-ssl")
        with WireClient(sim.host, sim.port) as plain:
            assert plain.login() == [["!done"]]


@pytest.mark.parametrize("mode", ["close", "reset", "fatal", "refuse"])
def test_foreign_sessions_full_router_refuses_per_over_limit_option(mode: str) -> None:
    with small(over_limit=mode) as sim:
        sim.hold_foreign_sessions(20)
        if mode == "refuse":
            assert refused(sim)
        else:
            try:
                extra = WireClient(sim.host, sim.port)
            except ConnectionResetError:
                assert mode == "reset"  # the RST can beat connect() to the finish line
            else:
                with extra:
                    if mode == "fatal":
                        assert extra.read() == ["!fatal", "too many sessions"]
                    assert extra.wait_closed()
        # Whatever the refusal, our client sees a router error it retries, never a login error.
        with pytest.raises(RouterError) as info:
            RouterClient(endpoint_for(sim)).connect()
        assert not isinstance(info.value, LoginError)
        sim.hold_foreign_sessions(0)
        # In "refuse" mode the port re-opens in the background once there is room again.
        wait_for(lambda: not refused(sim), 5, "the API port to accept again")
        with WireClient(sim.host, sim.port) as again:
            assert again.login() == [["!done"]]


def test_over_limit_refuse_follows_our_own_sessions() -> None:
    with small(max_sessions=2, over_limit="refuse") as sim:
        with WireClient(sim.host, sim.port) as a, WireClient(sim.host, sim.port) as b:
            a.login()
            b.login()
            assert refused(sim)
        wait_for(lambda: not refused(sim), 5, "the port to re-open once sessions closed")
        with RouterClient(endpoint_for(sim)) as client:
            assert client.call("/system/identity/print")


def test_foreign_sessions_reject_bad_arguments(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.hold_foreign_sessions(-1)
    with pytest.raises(ValueError):
        sim.hold_foreign_sessions(1, service="winbox")
