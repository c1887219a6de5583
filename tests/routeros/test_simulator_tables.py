"""Router-wide tables: sessions by listen, byte counters that agree with monitor-traffic,
.proplist and queries, and the per-command counter (docs/routeros.md, Router-wide tables)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import librouteros
import pytest
from librouteros.query import Key

from routeros.codec import encode_sentence
from routeros.simulator import Simulator, SimulatorConfig
from tests.routeros.wire import WireClient, attrs, tag_of

logging.getLogger("librouteros").setLevel(logging.INFO)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(pppoe=6, hotspot=3, static=2, seed=11)) as s:
        yield s


@pytest.fixture
def wire(sim: Simulator) -> Iterator[WireClient]:
    with WireClient(sim.host, sim.port) as c:
        assert c.login() == [["!done"]]
        yield c


def customers(sim: Simulator, service_type: str) -> list[dict[str, Any]]:
    return [c for c in sim.customers()["customers"] if c["service_type"] == service_type]


def rows(replies: list[list[str]]) -> list[dict[str, str]]:
    return [attrs(r) for r in replies if r[0] == "!re"]


def tagged(wire: WireClient, tag: str) -> list[str]:
    """The next sentence of command ``tag`` (sentences of other commands are skipped)."""
    return wire.read_until(lambda s: tag_of(s) == tag)[-1]


def latest(wire: WireClient, tags: set[str]) -> dict[str, list[str]]:
    """The next sentence of each command in ``tags``, however they interleave."""
    got: dict[str, list[str]] = {}

    def all_seen(s: list[str]) -> bool:
        tag = tag_of(s)
        if tag in tags and tag not in got:
            got[tag] = s
        return len(got) == len(tags)

    wire.read_until(all_seen)
    return got


def barrier(wire: WireClient) -> None:
    """Wait until the router has read every command sent before: a listen sent earlier is
    then registered, so a change made through the Simulator next cannot overtake it."""
    wire.send("/system/identity/print", ".tag=barrier")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "barrier")


def send_together(wire: WireClient, *sentences: list[str]) -> None:
    """One write, so the router reads every command in the same pass: streams started
    this way tick together, each cycle at the same instant of the router's clock."""
    wire.send_raw(b"".join(encode_sentence(s) for s in sentences))


def read_cycles(wire: WireClient, tags: set[str], cycles: int) -> dict[str, dict[int, list[dict[str, str]]]]:
    """Rows of the running streams ``tags`` by tag and `.section`: sections 0 to ``cycles``
    complete (read until the section after them has begun)."""
    got: dict[str, dict[int, list[dict[str, str]]]] = {t: {} for t in tags}

    def enough(s: list[str]) -> bool:
        tag = tag_of(s)
        if s[0] == "!re" and tag in got:
            row = attrs(s)
            got[tag].setdefault(int(row[".section"]), []).append(row)
        return all(len(by_section) > cycles + 1 for by_section in got.values())

    wire.read_until(enough, timeout=cycles + 10)
    return got


# ---- sessions: print and listen ------------------------------------------------------------


def test_ppp_active_rows_carry_stable_address_and_caller_id(sim: Simulator, wire: WireClient) -> None:
    by_user = {r["name"]: r for r in rows(wire.command("/ppp/active/print"))}
    for c in customers(sim, "pppoe"):
        row = by_user[c["pppoe_username"]]
        assert row["service"] == "pppoe" and row["address"].startswith("10.")
        assert row["caller-id"] == c["mac_address"]
        assert row["session-id"].startswith("0x") and row["uptime"][-1] == "s"
        assert {"encoding", "limit-bytes-in", "limit-bytes-out", "radius"} <= set(row)
    user = customers(sim, "pppoe")[0]["pppoe_username"]
    sim.drop_pppoe(user)
    sim.restore_pppoe(user)
    again = rows(wire.command("/ppp/active/print", f"?name={user}"))[0]
    assert (again["address"], again["caller-id"]) == (by_user[user]["address"], by_user[user]["caller-id"])
    assert again[".id"] != by_user[user][".id"]


def test_ppp_active_listen_and_monitor_see_the_same_drop(sim: Simulator, wire: WireClient) -> None:
    c = customers(sim, "pppoe")[1]
    user, iface = c["pppoe_username"], c["target"]
    old = rows(wire.command("/ppp/active/print", f"?name={user}"))[0]
    wire.send("/ppp/active/listen", ".tag=l")
    wire.send("/interface/monitor-traffic", f"=interface={iface}", "=interval=0.1", ".tag=m")
    tagged(wire, "m")
    barrier(wire)
    sim.drop_pppoe(user)  # the default drop mode: the monitor ends with a trap
    got = wire.read_until(lambda s: tag_of(s) == "l")
    assert got[-1] == ["!re", ".tag=l", f"=.id={old['.id']}", "=.dead=true"]
    ending = [s for s in got if tag_of(s) == "m" and s[0] != "!re"]
    ending += wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "m") if not ending else []
    assert ["!trap", ".tag=m", "=category=0", "=message=no such item"] in ending
    sim.restore_pppoe(user)
    back = attrs(tagged(wire, "l"))
    assert back["name"] == user and back[".id"] != old[".id"]
    assert back["address"] == old["address"] and back["caller-id"] == old["caller-id"]
    wire.send("/cancel", "=tag=l")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "l")


def test_listen_dead_value_is_yes_before_v7() -> None:
    with (
        Simulator(SimulatorConfig(pppoe=1, hotspot=1, static=0, version="6.49.10")) as sim,
        WireClient(sim.host, sim.port) as wire,
    ):
        wire.login()
        ppp = customers(sim, "pppoe")[0]["pppoe_username"]
        hotspot = customers(sim, "hotspot")[0]["hotspot_username"]
        wire.send("/ppp/active/listen", ".tag=p")
        wire.send("/ip/hotspot/active/listen", ".tag=h")
        barrier(wire)
        sim.drop_pppoe(ppp)
        sim.drop_hotspot(hotspot)
        assert tagged(wire, "p")[-1] == "=.dead=yes"
        assert tagged(wire, "h")[-1] == "=.dead=yes"


def test_hotspot_active_listen_reports_logout_then_a_new_login(sim: Simulator, wire: WireClient) -> None:
    c = customers(sim, "hotspot")[0]
    user, queue = c["hotspot_username"], c["target"]
    old = rows(wire.command("/ip/hotspot/active/print", f"?user={user}"))[0]
    assert old["mac-address"] == c["mac_address"] and old["login-by"] and old["server"]
    wire.send("/ip/hotspot/active/listen", ".tag=h")
    wire.send("/queue/simple/listen", ".tag=q", "=.proplist=name,bytes")
    barrier(wire)
    sim.drop_hotspot(user)
    gone = latest(wire, {"h", "q"})
    assert gone["h"] == ["!re", ".tag=h", f"=.id={old['.id']}", "=.dead=true"]
    assert gone["q"][-1] == "=.dead=true"  # its dynamic queue went with it
    assert rows(wire.command("/ip/hotspot/active/print", f"?user={user}")) == []
    assert rows(wire.command("/queue/simple/print", f"?name={queue}")) == []
    sim.restore_hotspot(user)
    new = latest(wire, {"h", "q"})
    back = attrs(new["h"])
    assert back["user"] == user and back[".id"] != old[".id"]
    assert (back["address"], back["mac-address"]) == (old["address"], old["mac-address"])
    # A new session counts from zero: far below what the old one had carried.
    assert int(back["bytes-out"]) < int(old["bytes-out"])
    assert attrs(new["q"])["name"] == queue
    wire.send("/cancel")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "q")


def test_hotspot_drop_and_restore_refuse_other_customers(sim: Simulator) -> None:
    with pytest.raises(KeyError, match="hotspot"):
        sim.drop_hotspot(customers(sim, "pppoe")[0]["pppoe_username"])
    with pytest.raises(KeyError):
        sim.restore_hotspot("nobody")


# ---- counters and rates --------------------------------------------------------------------


def test_interface_counters_advance_by_what_monitor_traffic_streams(sim: Simulator, wire: WireClient) -> None:
    names = [c["target"] for c in customers(sim, "pppoe")]
    send_together(
        wire,
        ["/interface/print", "?type=pppoe-in", "=.proplist=name,rx-byte,tx-byte", "=interval=1", ".tag=p"],
        ["/interface/monitor-traffic", f"=interface={','.join(names)}", "=interval=1", ".tag=m"],
    )
    cycles = 4
    got = read_cycles(wire, {"p", "m"}, cycles)
    counters = {n: {r["name"]: r for r in got["p"][n]} for n in range(cycles + 1)}
    streamed = {"rx": 0, "tx": 0}
    counted = {"rx": 0, "tx": 0}
    for n in range(1, cycles + 1):
        for r in got["m"][n]:  # the rate over the second before this cycle
            for d in streamed:
                streamed[d] += int(r[f"{d}-bits-per-second"])
    for name in names:
        for d in counted:
            counted[d] += (int(counters[cycles][name][f"{d}-byte"]) - int(counters[0][name][f"{d}-byte"])) * 8
    for d in ("rx", "tx"):
        assert counted[d] == pytest.approx(streamed[d], rel=0.02), d
    assert counted["tx"] > 0


def test_queue_bytes_advance_by_rate(sim: Simulator, wire: WireClient) -> None:
    wire.send("/queue/simple/print", "=.proplist=name,rate,bytes", "=interval=1", ".tag=q")
    cycles = 4
    got = read_cycles(wire, {"q"}, cycles)["q"]
    by_cycle = {n: {r["name"]: r for r in got[n]} for n in range(cycles + 1)}
    rate = [0, 0]
    grown = [0, 0]
    for name, first in by_cycle[0].items():
        last = by_cycle[cycles][name]
        for i in (0, 1):  # upload/download
            grown[i] += (int(last["bytes"].split("/")[i]) - int(first["bytes"].split("/")[i])) * 8
            rate[i] += sum(int(by_cycle[n][name]["rate"].split("/")[i]) for n in range(1, cycles + 1))
    assert grown[0] == pytest.approx(rate[0], rel=0.02)
    assert grown[1] == pytest.approx(rate[1], rel=0.02)
    assert grown[1] > 0


def test_interface_counters_restart_from_zero_on_reconnect(sim: Simulator, wire: WireClient) -> None:
    c = customers(sim, "pppoe")[2]
    query = (f"?name={c['target']}", "=.proplist=.id,rx-byte,tx-byte")
    old = rows(wire.command("/interface/print", *query))[0]
    sim.drop_pppoe(c["pppoe_username"])
    sim.restore_pppoe(c["pppoe_username"])
    new = rows(wire.command("/interface/print", *query))[0]
    queue = rows(wire.command("/queue/simple/print", f"?target={c['target']}", "=.proplist=bytes"))[0]
    assert new[".id"] != old[".id"]
    # What a 100 Mbit/s link at most carries in the few seconds this test may take.
    assert int(new["tx-byte"]) < 100_000_000 < int(old["tx-byte"])
    assert int(queue["bytes"].split("/")[1]) < 100_000_000


# ---- .proplist and queries -------------------------------------------------------------------


def test_print_proplist_returns_only_listed_known_properties(sim: Simulator, wire: WireClient) -> None:
    got = rows(wire.command("/interface/print", "?type=pppoe-in", "=.proplist=name,rx-byte,tx-byte,no-such"))
    assert len(got) == 6 and all(set(r) == {"name", "rx-byte", "tx-byte"} for r in got)
    with_id = rows(wire.command("/ppp/active/print", "=.proplist=.id,name,address"))
    assert all(set(r) == {".id", "name", "address"} for r in with_id)


def test_listen_proplist_shapes_new_rows(sim: Simulator, wire: WireClient) -> None:
    user = customers(sim, "pppoe")[3]["pppoe_username"]
    wire.send("/ppp/active/listen", "=.proplist=name,address", ".tag=l")
    barrier(wire)
    sim.drop_pppoe(user)
    assert tagged(wire, "l")[-1] == "=.dead=true"  # removals carry .id and .dead whatever the proplist
    sim.restore_pppoe(user)
    assert set(attrs(tagged(wire, "l"))) == {".tag", "name", "address"}


@pytest.mark.parametrize(
    ("command", "queries", "expected"),
    [
        ("/interface/print", ["?type=pppoe-in", "?running=yes"], 6),
        ("/interface/print", ["?type=pppoe-in", "?running=no"], 0),
        ("/ppp/active/print", ["?service=pppoe"], 6),
        ("/ip/hotspot/active/print", ["?server=hotspot1"], 3),
        ("/queue/simple/print", ["?dynamic=true"], 9),
        ("/queue/simple/print", ["?dynamic=false"], 2),
    ],
)
def test_print_queries_filter_router_wide_tables(
    wire: WireClient, command: str, queries: list[str], expected: int
) -> None:
    assert len(rows(wire.command(command, *queries, "=.proplist=.id"))) == expected


def test_queue_print_by_name_and_target(sim: Simulator, wire: WireClient) -> None:
    c = customers(sim, "pppoe")[0]
    by_name = rows(wire.command("/queue/simple/print", f"?name={c['target']}"))
    by_target = rows(wire.command("/queue/simple/print", f"?target={c['target']}"))
    assert [r[".id"] for r in by_name] == [r[".id"] for r in by_target] and len(by_name) == 1
    assert {"rate", "bytes", "packets", "max-limit"} <= set(by_name[0])


def test_librouteros_reads_counters_with_proplist_and_query(sim: Simulator) -> None:
    api = librouteros.connect(host=sim.host, port=sim.port, username="admin", password="admin", timeout=5)
    try:
        got = list(
            api.path("interface")
            .select(Key("name"), Key("rx-byte"), Key("tx-byte"))
            .where(Key("type") == "pppoe-in")
        )
        sessions = list(api.path("ppp", "active").select(Key("name"), Key("address"), Key("caller-id")))
    finally:
        api.close()
    assert sorted(r["name"] for r in got) == sorted(c["target"] for c in customers(sim, "pppoe"))
    assert all(set(r) == {"name", "rx-byte", "tx-byte"} and isinstance(r["tx-byte"], int) for r in got)
    assert len(sessions) == 6 and all(set(r) == {"name", "address", "caller-id"} for r in sessions)


def test_print_of_2000_pppoe_counters() -> None:
    with (
        Simulator(SimulatorConfig(pppoe=2000, hotspot=0, static=0)) as sim,
        WireClient(sim.host, sim.port) as wire,
    ):
        wire.login()
        got = rows(wire.command("/interface/print", "?type=pppoe-in", "=.proplist=name,rx-byte,tx-byte"))
        assert len(got) == 2000 and len({r["name"] for r in got}) == 2000
        assert all(r["rx-byte"].isdigit() and r["tx-byte"].isdigit() for r in got)


# ---- command counts ------------------------------------------------------------------------


def test_command_counts_by_word_and_reset(sim: Simulator, wire: WireClient) -> None:
    sim.reset_command_counts()
    wire.command("/interface/print", "?type=pppoe-in", "=.proplist=name")
    wire.command("/interface/print", "=.proplist=name")
    wire.command("/queue/simple/getall", "=.proplist=name")
    wire.command("/no/such")
    wire.send("/ppp/active/listen", ".tag=l")
    wire.command("/cancel", "=tag=l")
    want = {
        "/interface/print": 2,
        "/queue/simple/getall": 1,
        "/no/such": 1,
        "/ppp/active/listen": 1,
        "/cancel": 1,
    }
    assert sim.command_counts() == want
    assert sim.stats()["command_counts"] == want
    assert sim.reset_command_counts() == want
    assert sim.command_counts() == {}
    wire.command("/system/identity/print")
    assert sim.command_counts() == {"/system/identity/print": 1}


def test_command_counts_leave_out_logins_before_success(sim: Simulator) -> None:
    sim.reset_command_counts()
    with WireClient(sim.host, sim.port) as c:
        assert c.login(password="wrong")[0][0] == "!trap"
        assert c.login() == [["!done"]]
    assert sim.command_counts() == {}
