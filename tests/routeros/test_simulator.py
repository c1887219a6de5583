"""The simulator speaks RouterOS API to an unmodified librouteros and to a raw-socket client."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import librouteros
import pytest
from librouteros.exceptions import MultiTrapError, TrapError
from librouteros.query import Key

from harness.polling import wait_for
from routeros.simulator import Simulator, SimulatorConfig
from routeros.simulator.model import MONITOR_FIELDS
from tests.routeros.wire import WireClient, attrs, replies_for, tag_of

# librouteros logs the login password at DEBUG.
logging.getLogger("librouteros").setLevel(logging.INFO)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(pppoe=6, hotspot=2, static=2, seed=3)) as s:
        yield s


@pytest.fixture
def wire(sim: Simulator) -> Iterator[WireClient]:
    with WireClient(sim.host, sim.port) as c:
        assert c.login() == [["!done"]]
        yield c


def pppoe_names(sim: Simulator) -> list[str]:
    return [c["target"] for c in sim.customers()["customers"] if c["service_type"] == "pppoe"]


def connect(sim: Simulator, **kw: object) -> librouteros.api.Api:
    params: dict[str, object] = dict(
        host=sim.host, port=sim.port, username="admin", password="admin", timeout=5
    )
    params.update(kw)
    return librouteros.connect(**params)


# ---- librouteros, unmodified -----------------------------------------------------------------


def test_librouteros_login_succeeds_and_prints_identity(sim: Simulator) -> None:
    api = connect(sim)
    try:
        assert list(api.path("system", "identity")) == [{"name": "sim-router"}]
    finally:
        api.close()


def test_librouteros_login_with_wrong_password_raises_exact_trap(sim: Simulator) -> None:
    with pytest.raises(TrapError) as info:
        connect(sim, password="wrong")
    assert info.value.message == "invalid user name or password (6)"


def test_librouteros_print_with_query_returns_pppoe_interfaces(sim: Simulator) -> None:
    api = connect(sim)
    try:
        rows = list(
            api.path("interface")
            .select(Key("name"), Key("type"), Key("running"))
            .where(Key("type") == "pppoe-in", Key("running") == True)  # noqa: E712 (a librouteros query, not a truth test)
        )
    finally:
        api.close()
    assert sorted(r["name"] for r in rows) == sorted(pppoe_names(sim))
    assert all(r["type"] == "pppoe-in" and r["running"] is True for r in rows)


def test_librouteros_monitor_traffic_once_returns_the_14_fields(sim: Simulator) -> None:
    name = pppoe_names(sim)[0]
    api = connect(sim)
    try:
        rows = tuple(api("/interface/monitor-traffic", interface=name, once=True))
    finally:
        api.close()
    assert len(rows) == 1
    assert tuple(rows[0]) == MONITOR_FIELDS
    assert rows[0]["name"] == name
    assert all(isinstance(rows[0][f], int) for f in MONITOR_FIELDS[1:])


def test_librouteros_unknown_command_raises_both_real_traps(sim: Simulator) -> None:
    api = connect(sim)
    try:
        with pytest.raises(MultiTrapError) as info:
            tuple(api("/interface/wireless/print"))
        assert [t.message for t in info.value.traps] == [
            "no such command or directory (wireless)",
            "no such command prefix",
        ]
        assert [t.category for t in info.value.traps] == [0, 0]
        assert list(api.path("system", "identity"))  # connection still usable
    finally:
        api.close()


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        (
            ("ppp", "active"),
            {".id", "name", "service", "caller-id", "address", "uptime", "session-id", "radius"},
        ),
        (("ppp", "secret"), {".id", "name", "service", "profile", "password"}),
        (("ppp", "profile"), {".id", "name"}),
        (
            ("ip", "hotspot", "active"),
            {".id", "user", "address", "mac-address", "bytes-in", "bytes-out", "uptime"},
        ),
        (("ip", "hotspot", "user"), {".id", "name", "profile"}),
        (("ip", "hotspot", "user", "profile"), {".id", "name"}),
        (("queue", "simple"), {".id", "name", "target", "rate", "max-limit", "bytes", "dynamic"}),
        (("system", "resource"), {"uptime", "version", "cpu-load", "board-name"}),
    ],
)
def test_librouteros_menu_print_returns_rows(sim: Simulator, path: tuple[str, ...], keys: set[str]) -> None:
    api = connect(sim)
    try:
        rows = list(api.path(*path))
    finally:
        api.close()
    assert rows
    assert all(
        keys <= set(r)
        for r in rows
        if r.get("name") not in ("default", "default-encryption", "default-trial")
    )


# ---- monitor-traffic on the wire ------------------------------------------------------------


def test_monitor_traffic_streams_tagged_rows_with_increasing_sections(
    sim: Simulator, wire: WireClient
) -> None:
    name = pppoe_names(sim)[1]
    wire.send("/interface/monitor-traffic", f"=interface={name}", "=interval=0.1", ".tag=m1")
    rows = [wire.next_sentence() for _ in range(3)]
    assert all(r[0] == "!re" and tag_of(r) == "m1" for r in rows)
    sections = [attrs(r)[".section"] for r in rows]
    assert sections == ["0", "1", "2"]
    fields = [w.split("=")[1] for w in rows[0][1:] if w.startswith("=") and not w.startswith("=.")]
    assert tuple(fields) == MONITOR_FIELDS
    values = attrs(rows[0])
    assert values["name"] == name
    assert all(values[f].isdigit() for f in MONITOR_FIELDS[1:])
    wire.send("/cancel", "=tag=m1")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "m1")


@pytest.mark.parametrize("once_word", ["=once", "=once=", "=once=yes"])
def test_monitor_traffic_once_accepts_every_spelling(
    sim: Simulator, wire: WireClient, once_word: str
) -> None:
    name = pppoe_names(sim)[0]
    replies = wire.command("/interface/monitor-traffic", f"=interface={name}", once_word, ".tag=o")
    assert [r[0] for r in replies] == ["!re", "!done"]
    assert all(tag_of(r) == "o" for r in replies)
    assert attrs(replies[0])["name"] == name


def test_monitor_traffic_interface_list_sends_one_row_per_interface_per_cycle(
    sim: Simulator, wire: WireClient
) -> None:
    a, b = pppoe_names(sim)[:2]
    wire.send("/interface/monitor-traffic", f"=interface={a},{b}", "=interval=0.1", ".tag=l")
    rows = [wire.next_sentence() for _ in range(4)]
    assert [(attrs(r)["name"], attrs(r)[".section"]) for r in rows] == [
        (a, "0"),
        (b, "0"),
        (a, "1"),
        (b, "1"),
    ]
    wire.send("/cancel")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "l")


def test_monitor_traffic_proplist_limits_fields(sim: Simulator, wire: WireClient) -> None:
    name = pppoe_names(sim)[0]
    replies = wire.command(
        "/interface/monitor-traffic",
        f"=interface={name}",
        "=once=",
        "=.proplist=name,tx-bits-per-second,rx-bits-per-second",
    )
    assert set(attrs(replies[0])) == {"name", "tx-bits-per-second", "rx-bits-per-second"}


def test_monitor_traffic_unknown_interface_traps_category_1(wire: WireClient) -> None:
    replies = wire.command("/interface/monitor-traffic", "=interface=<pppoe-nobody>", ".tag=x")
    assert replies == [
        ["!trap", ".tag=x", "=category=1", "=message=input does not match any value of interface"],
        ["!done", ".tag=x"],
    ]


def test_monitor_traffic_duration_ends_with_done(sim: Simulator, wire: WireClient) -> None:
    name = pppoe_names(sim)[0]
    wire.send("/interface/monitor-traffic", f"=interface={name}", "=interval=0.1", "=duration=0.35", ".tag=d")
    got = wire.read_until(lambda s: s[0] == "!done", timeout=3)
    assert got[0][0] == "!re" and all(tag_of(s) == "d" for s in got)


def test_tag_is_accepted_anywhere_in_the_sentence(sim: Simulator, wire: WireClient) -> None:
    name = pppoe_names(sim)[0]
    wire.send("/interface/monitor-traffic", ".tag=first", f"=interface={name}", "=once=")
    replies = wire.read_until(lambda s: s[0] == "!done")
    assert [tag_of(r) for r in replies] == ["first", "first"]


def test_untagged_command_gets_untagged_replies(wire: WireClient) -> None:
    assert wire.command("/system/identity/print") == [["!re", "=name=sim-router"], ["!done"]]


# ---- /cancel ------------------------------------------------------------------------------


def test_cancel_with_tag_replies_trap_then_cancel_done_then_done(sim: Simulator, wire: WireClient) -> None:
    name = pppoe_names(sim)[0]
    wire.send("/interface/monitor-traffic", f"=interface={name}", ".tag=m1")
    assert wire.next_sentence()[0] == "!re"
    wire.send("/cancel", "=tag=m1", ".tag=c1")
    got = wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "m1")
    tail = [s for s in got if s[0] != "!re"]
    assert tail == [
        ["!trap", ".tag=m1", "=category=2", "=message=interrupted"],
        ["!done", ".tag=c1"],
        ["!done", ".tag=m1"],
    ]
    assert wire.command("/system/identity/print")[-1] == ["!done"]  # still usable


def test_cancel_without_tag_cancels_every_running_command(sim: Simulator, wire: WireClient) -> None:
    names = pppoe_names(sim)
    for i, n in enumerate(names[:3]):
        wire.send("/interface/monitor-traffic", f"=interface={n}", f".tag=s{i}")
    wire.send("/ppp/active/listen", ".tag=lst")
    wire.send("/cancel")
    got = wire.read_until(lambda s: s[0] == "!done" and tag_of(s) is None)
    got += wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "lst")
    traps = {tag_of(s) for s in got if s[0] == "!trap"}
    dones = [tag_of(s) for s in got if s[0] == "!done"]
    assert traps == {"s0", "s1", "s2", "lst"}
    assert dones[0] is None and set(dones[1:]) == {"s0", "s1", "s2", "lst"}
    # Nothing is left running to send more (other tests' sessions may still be closing).
    wait_for(lambda: sim.stats()["running_commands"] == 0, 5, "no command left running on the router")


def test_cancel_of_unknown_tag_replies_done(wire: WireClient) -> None:
    assert wire.command("/cancel", "=tag=never-used") == [["!done"]]


def test_listen_cancelled_on_quiet_menu_sends_trap_empty_done(wire: WireClient) -> None:
    wire.send("/ip/hotspot/user/profile/listen", ".tag=q")
    wire.send("/cancel", "=tag=q", ".tag=c")
    got = wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "q")
    assert got == [
        ["!trap", ".tag=q", "=category=2", "=message=interrupted"],
        ["!done", ".tag=c"],
        ["!empty", ".tag=q"],
        ["!done", ".tag=q"],
    ]


# ---- print, queries, !empty ------------------------------------------------------------------


def test_print_with_no_match_sends_empty_then_done(wire: WireClient) -> None:
    assert wire.command("/ppp/active/print", "?name=nobody", ".tag=p1") == [
        ["!empty", ".tag=p1"],
        ["!done", ".tag=p1"],
    ]


def test_print_with_no_match_before_718_sends_only_done() -> None:
    with (
        Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0, version="7.17")) as old,
        WireClient(old.host, old.port) as c,
    ):
        c.login()
        assert c.command("/ppp/active/print", "?name=nobody") == [["!done"]]


@pytest.mark.parametrize(
    ("queries", "expected"),
    [
        (["?type=pppoe-in"], 6),
        (["?=type=pppoe-in", "?running=yes"], 6),
        (["?type=ether"], 5),
        (["?type=ether", "?type=bridge", "?#|"], 6),
        (["?type=pppoe-in", "?#!"], 6),
        (["?-mac-address"], 6),
        (["?name=ether1"], 1),
    ],
)
def test_print_queries_filter_rows(wire: WireClient, queries: list[str], expected: int) -> None:
    rows = wire.command("/interface/print", *queries, "=.proplist=name")
    assert len([r for r in rows if r[0] == "!re"]) == expected


def test_print_proplist_limits_returned_properties(wire: WireClient) -> None:
    rows = wire.command("/interface/print", "?name=ether1", "=.proplist=.id,name,rx-byte")
    assert set(attrs(rows[0])) == {".id", "name", "rx-byte"}


def test_print_count_only_returns_ret(wire: WireClient) -> None:
    assert wire.command("/interface/print", "?type=pppoe-in", "=count-only=") == [["!done", "=ret=6"]]


def test_interface_print_shows_dynamic_pppoe_in_with_counters(sim: Simulator, wire: WireClient) -> None:
    name = pppoe_names(sim)[0]
    row = attrs(wire.command("/interface/print", f"?name={name}")[0])
    assert row["type"] == "pppoe-in" and row["dynamic"] == "true" and row["running"] == "true"
    assert int(row["tx-byte"]) >= 0 and int(row["rx-byte"]) >= 0 and row["mtu"] == "1480"


def test_queue_simple_pairs_are_upload_slash_download(sim: Simulator, wire: WireClient) -> None:
    data = sim.customers()
    packages = {p["name"]: p for p in data["packages"]}
    hotspot_ips = {
        attrs(r)["user"]: attrs(r)["address"]
        for r in wire.command("/ip/hotspot/active/print")
        if r[0] == "!re"
    }
    queues = {attrs(r)["name"]: attrs(r) for r in wire.command("/queue/simple/print") if r[0] == "!re"}
    for c in data["customers"]:
        q = queues[c["target"]]
        p = packages[c["package"]]
        assert q["max-limit"] == f"{p['upload_bps']}/{p['download_bps']}"
        up, down = q["rate"].split("/")
        assert up.isdigit() and down.isdigit()
        if c["service_type"] == "pppoe":
            assert q["dynamic"] == "true" and q["target"] == c["target"]
        elif c["service_type"] == "hotspot":
            assert q["dynamic"] == "true" and q["target"] == f"{hotspot_ips[c['hotspot_username']]}/32"
        else:
            assert q["dynamic"] == "false" and q["target"] == f"{c['static_ip']}/32"


def test_ppp_profile_rate_limit_is_upload_slash_download(wire: WireClient) -> None:
    rows = {attrs(r)["name"]: attrs(r) for r in wire.command("/ppp/profile/print") if r[0] == "!re"}
    assert rows["home-10M"]["rate-limit"] == "5M/10M"


def test_unknown_command_replies_two_category_0_traps_then_done(wire: WireClient) -> None:
    assert wire.command("/foo/bar", ".tag=u") == [
        ["!trap", ".tag=u", "=category=0", "=message=no such command or directory (foo)"],
        ["!trap", ".tag=u", "=category=0", "=message=no such command prefix"],
        ["!done", ".tag=u"],
    ]


def test_unknown_verb_on_known_menu_names_the_verb(wire: WireClient) -> None:
    replies = wire.command("/interface/frobnicate")
    assert replies[0] == ["!trap", "=category=0", "=message=no such command or directory (frobnicate)"]


def test_quit_ends_the_session_with_fatal(sim: Simulator) -> None:
    with WireClient(sim.host, sim.port) as c:
        c.login()
        c.send("/quit")
        assert c.read() == ["!fatal", "session terminated on request"]
        assert c.wait_closed()


def test_replies_interleave_between_tags_on_one_connection(sim: Simulator, wire: WireClient) -> None:
    names = pppoe_names(sim)
    for i, n in enumerate(names):
        wire.send("/interface/monitor-traffic", f"=interface={n}", "=interval=0.1", f".tag=t{i}")
    wire.send("/system/identity/print", ".tag=id")
    got = wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "id")
    assert replies_for(got, "id") == [["!re", ".tag=id", "=name=sim-router"], ["!done", ".tag=id"]]
    seen: dict[str | None, str] = {}

    def every_stream_seen(s: list[str]) -> bool:
        if s[0] == "!re" and tag_of(s) != "id":
            seen[tag_of(s)] = attrs(s)["name"]
        return len(seen) == len(names)

    for s in got:
        every_stream_seen(s)
    if len(seen) < len(names):
        wire.read_until(every_stream_seen)
    assert seen == {f"t{i}": n for i, n in enumerate(names)}
    wire.send("/cancel")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) is None)


def test_print_interval_repeats_rows_per_section_with_done_per_cycle(wire: WireClient) -> None:
    wire.send("/interface/print", "?type=ether", "=.proplist=name", "=interval=0.1", ".tag=pi")
    cycles = [wire.read_until(lambda s: s[0] == "!done") for _ in range(2)]
    for n, cycle in enumerate(cycles):
        assert [s[0] for s in cycle] == ["!re"] * 5 + ["!done"]
        assert {attrs(s)[".section"] for s in cycle[:-1]} == {str(n)}
        assert all(tag_of(s) == "pi" for s in cycle)
    wire.send("/cancel", "=tag=pi")
    wire.read_until(lambda s: s[0] == "!trap" and tag_of(s) == "pi")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "pi")


def test_print_interval_serves_the_api_service_menus_too(wire: WireClient) -> None:
    wire.send("/ip/service/print", "=.proplist=name", "=interval=0.1", ".tag=si")
    cycle = wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "si")
    assert [attrs(s)["name"] for s in cycle[:-1]] == ["api", "api-ssl"]
    wire.send("/cancel", "=tag=si")
    wire.read_until(lambda s: s[0] == "!trap" and tag_of(s) == "si")
    wire.read_until(lambda s: s[0] == "!done" and tag_of(s) == "si")


def test_monitor_traffic_accepts_interface_internal_id(sim: Simulator, wire: WireClient) -> None:
    name = pppoe_names(sim)[2]
    item_id = attrs(wire.command("/interface/print", f"?name={name}", "=.proplist=.id")[0])[".id"]
    replies = wire.command("/interface/monitor-traffic", f"=interface={item_id}", "=once=")
    assert attrs(replies[0])["name"] == name


def test_simulator_ip_service_and_user_active_describe_the_api(sim: Simulator) -> None:
    api = connect(sim)
    try:
        services = {row["name"]: row for row in api.path("ip", "service")}
        assert services["api"]["port"] == sim.port
        assert services["api"]["max-sessions"] == 20 and services["api"]["disabled"] is False
        assert services["api-ssl"]["disabled"] is True  # no TLS port on this simulator
        active = [row for row in api.path("user", "active") if row["via"] == "api"]
        assert len(active) >= 1 and {row["address"] for row in active} == {"127.0.0.1"}
    finally:
        api.close()
