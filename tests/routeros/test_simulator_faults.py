"""Faults on demand: PPPoE drop/return, closed connections, !fatal, stalls, latency."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from harness.polling import wait_for
from routeros.simulator import Simulator, SimulatorConfig
from tests.routeros.wire import WireClient, attrs, tag_of


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(pppoe=3, hotspot=1, static=1, seed=5)) as s:
        yield s


@pytest.fixture
def wire(sim: Simulator) -> Iterator[WireClient]:
    with WireClient(sim.host, sim.port) as c:
        c.login()
        yield c


def pppoe(sim: Simulator) -> tuple[str, str]:
    c = next(c for c in sim.customers()["customers"] if c["service_type"] == "pppoe")
    return c["pppoe_username"], c["target"]


def monitor(wire: WireClient, iface: str, tag: str) -> None:
    wire.send("/interface/monitor-traffic", f"=interface={iface}", "=interval=0.1", f".tag={tag}")
    first = wire.read()
    assert first is not None and first[0] == "!re" and tag_of(first) == tag


def drain(wire: WireClient) -> None:
    """Read whatever is still in flight; only for a peer that has stopped sending (stalled)."""
    while wire.read(0.2) is not None:
        pass


def interface_names(wire: WireClient) -> set[str]:
    return {attrs(r)["name"] for r in wire.command("/interface/print", "=.proplist=name") if r[0] == "!re"}


def test_drop_pppoe_trap_mode_ends_monitor_with_trap_and_done(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    monitor(wire, iface, "m")
    sim.drop_pppoe(user)  # config default: trap
    got = wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "m")
    assert [s for s in got if s[0] != "!re"] == [
        ["!trap", ".tag=m", "=category=0", "=message=no such item"],
        ["!done", ".tag=m"],
    ]
    assert iface not in interface_names(wire)
    assert wire.command("/ppp/active/print", f"?name={user}", ".tag=p") == [
        ["!empty", ".tag=p"],
        ["!done", ".tag=p"],
    ]


def test_drop_pppoe_done_mode_ends_monitor_with_done_only(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    monitor(wire, iface, "m")
    sim.drop_pppoe(user, mode="done")
    got = wire.read_until(lambda s: s[0] != "!re")
    assert got[-1] == ["!done", ".tag=m"]


def test_drop_pppoe_zeros_mode_streams_zeros_until_return(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    monitor(wire, iface, "m")
    sim.drop_pppoe(user, mode="zeros")

    def zero_row(s: list[str]) -> bool:
        a = attrs(s)
        return (
            s[0] == "!re"
            and a["name"] == iface
            and a["rx-bits-per-second"] == "0"
            and a["tx-bits-per-second"] == "0"
            and a["rx-packets-per-second"] == "0"
        )

    wire.read_until(zero_row)
    s = wire.read()
    assert s is not None and zero_row(s)
    sim.restore_pppoe(user)
    # Streams follow the name: rows carry the new session's traffic again (not all fields stay 0).
    wire.read_until(lambda s: s[0] == "!re" and not zero_row(s), timeout=5)


def test_drop_pppoe_stall_mode_sends_nothing_without_ending(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    monitor(wire, iface, "m")
    sim.drop_pppoe(user, mode="stall")
    # A barrier: every row sent before the drop arrives before this command's replies.
    wire.send("/system/identity/print", ".tag=b")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "b")
    assert sim.stats()["running_commands"] == 1  # alive...
    # ...but silent for several 0.1 s cycles (load can only make this window pass, never fail).
    assert wire.read(0.35) is None
    assert not wire.eof
    sim.restore_pppoe(user)
    s = wire.next_sentence()
    assert s[0] == "!re" and tag_of(s) == "m"


def test_drop_and_restore_pppoe_seen_by_ppp_active_listen(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    old = attrs(wire.command("/ppp/active/print", f"?name={user}")[0])
    old_iface = attrs(wire.command("/interface/print", f"?name={iface}")[0])
    wire.send("/ppp/active/listen", ".tag=l")
    wire.send("/interface/listen", ".tag=il", "=.proplist=name,rx-byte,tx-byte")
    # Once this is answered both listens are registered: the drop cannot overtake them.
    wire.command("/system/identity/print")
    sim.drop_pppoe(user)
    dead = wire.read_until(lambda s: tag_of(s) == "l")[-1]
    assert dead == ["!re", ".tag=l", f"=.id={old['.id']}", "=.dead=true"]
    assert user not in {attrs(r).get("name") for r in wire.command("/ppp/active/print") if r[0] == "!re"}
    sim.restore_pppoe(user)
    back = attrs(wire.read_until(lambda s: tag_of(s) == "l")[-1])
    assert back["name"] == user and back[".id"] != old[".id"] and back["session-id"] != old["session-id"]
    assert iface in interface_names(wire)
    new_iface = attrs(wire.command("/interface/print", f"?name={iface}")[0])
    assert new_iface[".id"] != old_iface[".id"]
    # Counters restart with the new interface object.
    assert int(new_iface["tx-byte"]) < int(old_iface["tx-byte"])
    wire.send("/cancel")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "il")


def test_drop_pppoe_then_monitor_start_traps_unknown_interface(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    sim.drop_pppoe(user)
    assert wire.command("/interface/monitor-traffic", f"=interface={iface}", "=once=")[0] == [
        "!trap",
        "=category=1",
        "=message=input does not match any value of interface",
    ]


def test_drop_pppoe_rejects_unknown_user_and_mode(sim: Simulator) -> None:
    with pytest.raises(KeyError):
        sim.drop_pppoe("nobody")
    with pytest.raises(ValueError):
        sim.drop_pppoe(pppoe(sim)[0], mode="explode")


def test_close_connections_closes_every_session(sim: Simulator) -> None:
    with WireClient(sim.host, sim.port) as a, WireClient(sim.host, sim.port) as b:
        a.login()
        b.login()
        assert sim.close_connections() == 2
        assert a.wait_closed() and b.wait_closed()
        assert a.read(0) is None
    wait_for(lambda: sim.stats()["open_sessions"] == 0, 5, "sessions to be released")
    with WireClient(sim.host, sim.port) as c:  # the service itself is still up
        assert c.login() == [["!done"]]


def test_send_fatal_sends_reason_then_closes(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    monitor(wire, iface, "m")
    assert sim.send_fatal("router rebooting") == 1
    got = wire.read_until(lambda s: s[0] == "!fatal")
    assert got[-1] == ["!fatal", "router rebooting"]
    assert wire.wait_closed()


def test_stall_sends_nothing_and_keeps_socket_open_until_released(sim: Simulator, wire: WireClient) -> None:
    user, iface = pppoe(sim)
    monitor(wire, iface, "m")
    sim.stall(True)
    drain(wire)
    wire.send("/system/identity/print", ".tag=id")
    assert wire.read(0.4) is None  # no answer while stalled (load can only make this pass)
    assert not wire.eof
    sim.stall(False)
    got = wire.read_until(lambda s: tag_of(s) == "id" and s[0] == "!done", timeout=3)
    assert ["!re", ".tag=id", "=name=sim-router"] in got
    s = wire.read_until(lambda s: tag_of(s) == "m")[-1]
    assert s[0] == "!re"


def test_set_latency_delays_replies_in_order(sim: Simulator, wire: WireClient) -> None:
    sim.set_latency(0.3)
    sent = time.monotonic()
    wire.send("/system/identity/print", ".tag=a")
    wire.send("/system/resource/print", ".tag=b")
    got = [wire.next_sentence()]
    # Nothing comes before the latency has passed. A lower bound, which load cannot break;
    # the 0.01 s allows for the event loop firing a timer a hair early.
    assert time.monotonic() - sent >= 0.29
    got += wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "b")
    assert [tag_of(s) for s in got] == ["a", "a", "b", "b"]
    sim.set_latency(0)
    assert wire.command("/system/identity/print")[-1] == ["!done"]


def test_inject_monitor_values_go_out_one_row_each_in_order_then_rows_are_normal(
    sim: Simulator, wire: WireClient
) -> None:
    _, iface = pppoe(sim)
    monitor(wire, iface, "m")
    huge = "1" * 400
    sim.inject_monitor_values(iface, "rx-bits-per-second", huge, "nan")
    # Rows of cycles already sent are normal; the injected ones follow them, in order.
    got = wire.read_until(lambda s: tag_of(s) == "m" and attrs(s)["rx-bits-per-second"] == huge)
    assert all(attrs(s)["rx-bits-per-second"].isdigit() for s in got[:-1])
    assert attrs(got[-1])["tx-bits-per-second"].isdigit()  # only the named field is touched
    assert attrs(wire.next_sentence())["rx-bits-per-second"] == "nan"
    after = attrs(wire.next_sentence())["rx-bits-per-second"]
    assert after.isdigit() and len(after) < 20


def test_inject_monitor_values_once_row_and_refusals(sim: Simulator, wire: WireClient) -> None:
    _, iface = pppoe(sim)
    sim.inject_monitor_values(iface, "tx-bits-per-second", "-1")
    rows = wire.command("/interface/monitor-traffic", f"=interface={iface}", "=once=", ".tag=o")
    assert attrs(rows[0])["tx-bits-per-second"] == "-1"
    with pytest.raises(ValueError, match="field"):
        sim.inject_monitor_values(iface, "name", "x")
    with pytest.raises(ValueError, match="no interface"):
        sim.inject_monitor_values("<pppoe-nobody>", "rx-bits-per-second", "1")
