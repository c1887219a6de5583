"""The simulator's /ping (docs/routeros.md, Ping) and its saturate() control."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import librouteros
import pytest

from harness.polling import wait_for
from routeros.ping import parse_ping_row
from routeros.simulator import Simulator, SimulatorConfig
from routeros.simulator.model import format_rtt
from routeros.simulator.traffic import Traffic
from tests.routeros.wire import WireClient, attrs, tag_of

logging.getLogger("librouteros").setLevel(logging.INFO)  # it logs the password at DEBUG

UNROUTED = "192.0.2.77"  # TEST-NET-1: no customer holds it


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(pppoe=4, hotspot=2, static=2, seed=5)) as s:
        yield s


@pytest.fixture
def wire(sim: Simulator) -> Iterator[WireClient]:
    with WireClient(sim.host, sim.port) as c:
        assert c.login() == [["!done"]]
        yield c


def customer(sim: Simulator, service_type: str, n: int = 0) -> dict[str, Any]:
    found = [c for c in sim.customers()["customers"] if c["service_type"] == service_type]
    return found[n]


def address_of(sim: Simulator, username: str) -> str:
    """The customer's address as the simulated router holds it (static_ip or its session's)."""
    c = next(c for c in sim.customers()["customers"] if c["username"] == username)
    if c["static_ip"]:
        return str(c["static_ip"])
    with WireClient(sim.host, sim.port) as w:
        w.login()
        menu, key = (
            ("/ppp/active/print", "name")
            if c["service_type"] == "pppoe"
            else ("/ip/hotspot/active/print", "user")
        )
        rows = w.command(menu, f"?{key}={username}")
    return attrs(rows[0])["address"]


def ping(wire: WireClient, address: str, count: int, interval: str = "0.05") -> list[list[str]]:
    return wire.command(
        "/ping", f"=address={address}", f"=count={count}", f"=interval={interval}", timeout=10
    )


def test_ping_open_ended_streams_probe_rows_until_cancel(sim: Simulator, wire: WireClient) -> None:
    address = customer(sim, "static_ip")["static_ip"]
    wire.send("/ping", f"=address={address}", "=interval=0.05", ".tag=p1")
    rows = [wire.next_sentence() for _ in range(4)]
    assert [r[0] for r in rows] == ["!re"] * 4  # no !done however long it runs
    assert all(tag_of(r) == "p1" for r in rows)
    assert [attrs(r)["seq"] for r in rows] == ["0", "1", "2", "3"]
    assert [attrs(r)["sent"] for r in rows] == ["1", "2", "3", "4"]
    assert wait_for(lambda: sim.stats()["ping_streams"] >= 1, 5, "the ping counted as running")
    wire.send("/cancel", "=tag=p1", ".tag=c1")
    got = wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "p1")
    assert [s for s in got if s[0] != "!re"] == [
        ["!trap", ".tag=p1", "=category=2", "=message=interrupted"],
        ["!done", ".tag=c1"],
        ["!done", ".tag=p1"],
    ]


def test_ping_row_has_the_fields_a_router_sends(sim: Simulator, wire: WireClient) -> None:
    address = customer(sim, "static_ip")["static_ip"]
    replies = ping(wire, address, 1)
    assert [r[0] for r in replies] == ["!re", "!done"]
    fields = [w[1:].split("=", 1)[0] for w in replies[0][1:]]
    # Order and names of the real capture (docs/routeros.md, Ping).
    assert fields == [
        "seq",
        "host",
        "size",
        "ttl",
        "time",
        "sent",
        "received",
        "packet-loss",
        "min-rtt",
        "avg-rtt",
        "max-rtt",
    ]
    row = attrs(replies[0])
    assert (row["host"], row["sent"], row["received"], row["packet-loss"]) == (address, "1", "1", "0")
    assert row["time"].endswith(("ms", "us"))
    assert parse_ping_row(row).rtt_ms is not None


def test_ping_count_ends_with_done_after_that_many_probes(sim: Simulator, wire: WireClient) -> None:
    address = customer(sim, "pppoe")["username"]
    replies = ping(wire, address_of(sim, address), 3)
    assert [r[0] for r in replies] == ["!re", "!re", "!re", "!done"]
    parsed = [parse_ping_row(attrs(r)) for r in replies[:3]]
    assert [p.seq for p in parsed] == [0, 1, 2]
    assert all(p.rtt_ms is not None and p.status is None and not p.summary for p in parsed)
    assert (parsed[-1].sent, parsed[-1].received, parsed[-1].packet_loss) == (3, 3, 0)


def test_ping_summary_row_option_adds_a_totals_row_before_done() -> None:
    with Simulator(SimulatorConfig(pppoe=0, hotspot=0, static=1, ping_summary_row=True)) as s:
        address = s.customers()["customers"][0]["static_ip"]
        with WireClient(s.host, s.port) as w:
            w.login()
            replies = ping(w, address, 2)
    assert [r[0] for r in replies] == ["!re", "!re", "!re", "!done"]
    summary = parse_ping_row(attrs(replies[2]))
    assert summary.summary and summary.seq is None and (summary.sent, summary.received) == (2, 2)


def test_ping_times_out_while_the_pppoe_session_is_down(sim: Simulator, wire: WireClient) -> None:
    c = customer(sim, "pppoe", 1)
    address = address_of(sim, c["username"])
    sim.drop_pppoe(c["username"])
    try:
        replies = ping(wire, address, 2)
    finally:
        sim.restore_pppoe(c["username"])
    rows = [attrs(r) for r in replies[:-1]]
    assert [r.get("status") for r in rows] == ["timeout", "timeout"]
    assert all("time" not in r for r in rows)
    assert (rows[-1]["sent"], rows[-1]["received"], rows[-1]["packet-loss"]) == ("2", "0", "100")
    assert "avg-rtt" not in rows[-1]  # nothing answered: no round-trip times to report
    # Back online: answered again.
    assert parse_ping_row(attrs(ping(wire, address, 1)[0])).status is None


def test_ping_times_out_while_the_hotspot_user_is_logged_out(sim: Simulator, wire: WireClient) -> None:
    c = customer(sim, "hotspot")
    address = address_of(sim, c["username"])
    sim.drop_hotspot(c["username"])
    try:
        row = attrs(ping(wire, address, 1)[0])
    finally:
        sim.restore_hotspot(c["username"])
    assert row["status"] == "timeout"


def test_ping_address_nobody_holds_is_host_unreachable(wire: WireClient) -> None:
    replies = ping(wire, UNROUTED, 2)
    parsed = [parse_ping_row(attrs(r)) for r in replies[:-1]]
    assert [(p.status, p.rtt_ms, p.host) for p in parsed] == [("host unreachable", None, UNROUTED)] * 2
    assert replies[-1] == ["!done"]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ((), "missing value(s) of argument(s) address"),
        (("=address=not-an-ip",), "invalid value for argument address"),
        (("=address=10.20.0.2", "=count=-1"), "value of count out of range"),
        (("=address=10.20.0.2", "=interval=soon"), "value of interval out of range"),
    ],
)
def test_ping_bad_arguments_trap_then_done(wire: WireClient, words: tuple[str, ...], message: str) -> None:
    replies = wire.command("/ping", *words, ".tag=b")
    assert replies == [["!trap", ".tag=b", "=category=1", f"=message={message}"], ["!done", ".tag=b"]]


def test_ping_is_counted_in_command_counts(sim: Simulator, wire: WireClient) -> None:
    before = sim.command_counts().get("/ping", 0)
    ping(wire, UNROUTED, 1)
    assert sim.command_counts()["/ping"] == before + 1


def test_librouteros_ping_with_count_returns_every_probe(sim: Simulator) -> None:
    # An independent client: ends on !done, like any finite command.
    address = customer(sim, "static_ip", 1)["static_ip"]
    api = librouteros.connect(host=sim.host, port=sim.port, username="admin", password="admin", timeout=5)
    try:
        rows = list(api("/ping", address=address, count="3", interval="0.05"))
    finally:
        api.close()
    assert [r["seq"] for r in rows] == [0, 1, 2]  # librouteros types numbers
    assert rows[-1]["sent"] == 3 and rows[-1]["packet-loss"] == 0


# ---- RTT follows utilisation (bufferbloat), saturate() -----------------------------------------


def rtts(wire: WireClient, address: str, count: int) -> list[float]:
    replies = ping(wire, address, count)
    values = [parse_ping_row(attrs(r)).rtt_ms for r in replies[:-1]]
    return [v for v in values if v is not None]


def download_share(wire: WireClient, interface: str, plan_bps: int) -> float:
    row = attrs(wire.command("/interface/monitor-traffic", f"=interface={interface}", "=once=")[0])
    return int(row["tx-bits-per-second"]) / plan_bps


def test_saturate_drives_monitor_traffic_to_the_plan_and_the_rtt_up(sim: Simulator, wire: WireClient) -> None:
    c = customer(sim, "pppoe", 2)
    plan = next(p for p in sim.customers()["packages"] if p["name"] == c["package"])["download_bps"]
    address = address_of(sim, c["username"])
    sim.saturate(c["username"], 0.1)  # a quiet line first
    try:
        wait_for(lambda: download_share(wire, c["target"], plan) < 0.15, 5, "the line down to 10% of plan")
        quiet = rtts(wire, address, 5)
        sim.saturate(c["username"], 1.0)
        wait_for(lambda: download_share(wire, c["target"], plan) > 0.95, 5, "the line at its plan")
        loaded = rtts(wire, address, 5)
    finally:
        sim.unsaturate(c["username"])
    assert len(quiet) == len(loaded) == 5
    assert max(quiet) < 20 < 100 < min(loaded)  # bufferbloat: +100..200 ms at the plan


def test_saturate_for_seconds_ends_by_itself(sim: Simulator, wire: WireClient) -> None:
    c = customer(sim, "pppoe", 3)
    plan = next(p for p in sim.customers()["packages"] if p["name"] == c["package"])["download_bps"]
    sim.saturate(c["username"], 0.5, seconds=1)
    try:
        wait_for(lambda: 0.45 < download_share(wire, c["target"], plan) <= 0.5, 5, "half the plan")
        # After the second it was given, the customer's own pattern again (never exactly 50%).
        wait_for(lambda: not 0.45 < download_share(wire, c["target"], plan) <= 0.5, 5, "the end of it")
    finally:
        sim.unsaturate(c["username"])


def test_saturate_refuses_bad_input(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="fraction"):
        sim.saturate(customer(sim, "pppoe")["username"], 1.5)
    with pytest.raises(ValueError, match="seconds"):
        sim.saturate(customer(sim, "pppoe")["username"], 1.0, seconds=0)
    with pytest.raises(KeyError):
        sim.saturate("nobody.here")


def test_traffic_saturated_counters_grow_by_the_saturated_rates() -> None:
    t = Traffic(seed=11, down_cap=20_000_000, up_cap=10_000_000)
    t.advance(3)
    t.saturate(0.9, until_sec=10)
    before = t.counters(4000)
    rates = [t.rates(ms) for ms in range(5000, 9001, 1000)]
    after = t.counters(9000)
    assert all(17_000_000 <= r[1] <= 18_000_000 for r in rates)  # 0.9 of plan, within the wobble
    assert after[1] - before[1] == sum(r[1] for r in rates)  # download counters = the rates' sum
    assert after[0] - before[0] == sum(r[0] for r in rates)
    t.advance(12)
    assert not t.saturated


@pytest.mark.parametrize(
    ("ms", "v7", "text"),
    [(9.562, True, "9ms562us"), (10.0, True, "10ms"), (0.473, True, "473us"), (9.562, False, "10ms")],
)
def test_format_rtt_writes_router_durations(ms: float, v7: bool, text: str) -> None:
    assert format_rtt(ms, v7) == text
