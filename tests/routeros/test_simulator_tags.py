"""Where `.tag` sits in every reply kind, checked on the raw bytes (docs/routeros.md, Tags).

Routers put it right after the reply word; the simulator's ``tag_position="last"`` keeps
the manual's order. Our own client must work against both.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routeros import RouterClient, TrapError
from routeros.codec import encode_sentence
from routeros.simulator import Simulator, SimulatorConfig
from tests.routeros.client_support import endpoint_for, next_event
from tests.routeros.simulator_cli import api_port, env_without_password, start_cli
from tests.routeros.wire import WireClient


@pytest.fixture(scope="module", params=["first", "last"])
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    config = SimulatorConfig(pppoe=2, hotspot=0, static=0, seed=4, tag_position=request.param)
    with Simulator(config) as s:
        yield s


@pytest.fixture
def wire(sim: Simulator) -> Iterator[WireClient]:
    with WireClient(sim.host, sim.port) as c:
        assert c.login() == [["!done"]]
        yield c


def expected(position: str, kind: str, tag: str, *attrs: str) -> bytes:
    """The exact bytes of one reply sentence with ``.tag`` where ``position`` puts it."""
    words = [kind, f".tag={tag}", *attrs] if position == "first" else [kind, *attrs, f".tag={tag}"]
    return encode_sentence(words)


def first_pppoe(sim: Simulator) -> str:
    return next(c["target"] for c in sim.customers()["customers"] if c["service_type"] == "pppoe")


def test_tag_position_re_and_done_on_the_wire(sim: Simulator, wire: WireClient) -> None:
    pos = sim.config.tag_position
    want = expected(pos, "!re", "p1", "=name=sim-router") + expected(pos, "!done", "p1")
    wire.send("/system/identity/print", ".tag=p1")
    assert wire.read_raw(len(want)) == want


def test_tag_position_trap_on_the_wire(sim: Simulator, wire: WireClient) -> None:
    pos = sim.config.tag_position
    want = expected(
        pos, "!trap", "t1", "=category=1", "=message=input does not match any value of interface"
    ) + expected(pos, "!done", "t1")
    wire.send("/interface/monitor-traffic", "=interface=<pppoe-nobody>", ".tag=t1")
    assert wire.read_raw(len(want)) == want


def test_tag_position_empty_on_the_wire_matches_the_documented_vector(wire: WireClient) -> None:
    # `!empty .tag=p1` from docs/routeros.md, Encodings; with no attributes both positions agree.
    want = bytes.fromhex("06 21 65 6d 70 74 79 07 2e 74 61 67 3d 70 31 00") + encode_sentence(
        ["!done", ".tag=p1"]
    )
    wire.send("/ppp/active/print", "?name=nobody", ".tag=p1")
    assert wire.read_raw(len(want)) == want


def test_tag_position_stream_rows_and_cancel_replies_on_the_wire(sim: Simulator, wire: WireClient) -> None:
    pos = sim.config.tag_position
    name = first_pppoe(sim)
    # A long interval: only the immediate first cycle is sent before the cancel.
    row = expected(pos, "!re", "m", f"=name={name}", "=.section=0")
    wire.send("/interface/monitor-traffic", f"=interface={name}", "=interval=1h", "=.proplist=name", ".tag=m")
    assert wire.read_raw(len(row)) == row
    cancel = (
        expected(pos, "!trap", "m", "=category=2", "=message=interrupted")
        + expected(pos, "!done", "c")
        + expected(pos, "!done", "m")
    )
    wire.send("/cancel", "=tag=m", ".tag=c")
    assert wire.read_raw(len(cancel)) == cancel


def test_tag_position_failed_login_on_the_wire(sim: Simulator) -> None:
    pos = sim.config.tag_position
    want = expected(pos, "!trap", "l", "=message=invalid user name or password (6)") + expected(
        pos, "!done", "l"
    )
    with WireClient(sim.host, sim.port) as c:
        c.send("/login", "=name=admin", "=password=wrong", ".tag=l")
        assert c.read_raw(len(want)) == want


def test_tag_position_our_client_works_with_either(sim: Simulator) -> None:
    name = first_pppoe(sim)
    with RouterClient(endpoint_for(sim)) as client:
        assert client.call("/system/identity/print") == [{"name": "sim-router"}]
        assert client.call("/ppp/active/print", queries=["?name=nobody"]) == []
        with pytest.raises(TrapError, match="no such command"):
            client.call("/no/such/thing")
        stream = client.stream("/interface/monitor-traffic", {"interface": name}, proplist=["name"])
        event, _ = next_event(stream, {"data"}, timeout=5)
        assert event.data is not None and event.data["name"] == name
        stream.cancel()
        event, _ = next_event(stream, {"done", "trap", "failed"}, timeout=5)
        assert event.kind == "done"
        stats = client.stats()
    assert stats["unknown_tag_sentences"] == 0 and stats["reconnects"] == 0


def test_tag_position_cli_flag_reaches_the_wire() -> None:
    args = ["--port", "0", "--pppoe", "1", "--hotspot", "0", "--static", "0", "--tag-position", "last"]
    proc = start_cli(*args, env=env_without_password())
    try:
        with WireClient("127.0.0.1", api_port(proc)) as c:
            c.login()
            want = expected("last", "!re", "i", "=name=sim-router")
            c.send("/system/identity/print", ".tag=i")
            assert c.read_raw(len(want)) == want
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_tag_position_rejects_unknown_value() -> None:
    with pytest.raises(ValueError, match="tag_position"):
        SimulatorConfig(tag_position="middle")
