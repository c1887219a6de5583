"""One watch cycle as data: rows to rates (directions, queues, unknowns), the view, the top."""

from __future__ import annotations

from models.router_config import RouterConfig
from settings import Secret
from tasks.message import CustomerMeta, RouterMeta
from tasks.rates import CounterRates
from tasks.router_customers import Directory
from tasks.router_view import Rates, build_view, interface_rates, queue_rates, top_json
from tasks.session_table import Session, SessionKind


def _meta(cid: str, service: str, down: int | None = 10_000_000, up: int | None = 2_000_000) -> CustomerMeta:
    return CustomerMeta(
        customer_id=cid,
        customer_name=f"Customer {cid}",
        username=cid,
        service_type=service,
        interface="",
        router="core-1",
        package_download_bps=down,
        package_upload_bps=up,
    )


ALICE = _meta("alice", "pppoe")
BOB = _meta("bob", "pppoe", None, None)
CAROL = _meta("carol", "hotspot")
DAN = _meta("dan", "static_ip")


def _directory() -> Directory:
    config = RouterConfig(
        id="r1",
        name="core-1",
        host="127.0.0.1",
        port=8728,
        username="admin",
        password=Secret(""),
        tls=False,
        tls_mode="verify",
        timeout=2.0,
        max_monitors=None,
        from_settings=False,
    )
    d = Directory(router=RouterMeta("r1", "core-1"), config=config)
    d.pppoe = {"alice": ALICE, "bob": BOB}
    d.hotspot = {"carol": CAROL}
    d.interfaces = {"<pppoe-alice>": ALICE, "<pppoe-bob>": BOB}
    d.queues = {"<hotspot-carol>": CAROL}
    d.targets = {"10.9.0.4/32": DAN}
    d.by_id = {m.customer_id: m for m in (ALICE, BOB, CAROL, DAN)}
    return d


def _iface(name: str, rx: int, tx: int) -> dict[str, str]:
    return {"name": name, "rx-byte": str(rx), "tx-byte": str(tx)}


def _queue(name: str, target: str, up: int, down: int, rate: str = "0/0") -> dict[str, str]:
    return {"name": name, "target": target, "bytes": f"{up}/{down}", "rate": rate}


def test_router_view_interface_tx_is_download_after_a_baseline() -> None:
    directory, counters = _directory(), CounterRates()
    first = Rates()
    interface_rates([_iface("<pppoe-alice>", 1_000, 5_000)], directory, counters, 0.0, first)
    assert first.customers == {}  # a baseline, not a rate
    second = Rates()
    interface_rates([_iface("<pppoe-alice>", 26_000, 2_505_000)], directory, counters, 2.0, second)
    assert second.customers == {"alice": (10_000_000, 100_000)}


def test_router_view_interface_reset_is_no_spike_and_unknown_logins_are_kept_apart() -> None:
    directory, counters = _directory(), CounterRates()
    interface_rates(
        [_iface("<pppoe-alice>", 10**9, 10**9), _iface("<pppoe-zed>", 0, 0)],
        directory,
        counters,
        0.0,
        Rates(),
    )
    out = Rates()
    interface_rates(
        [_iface("<pppoe-alice>", 500, 4_000), _iface("<pppoe-zed>", 250, 2_500), {"name": "<pppoe-x>"}],
        directory,
        counters,
        2.0,
        out,
    )
    assert out.customers == {}  # alice reconnected: no rate this cycle
    assert out.unknown == {("pppoe", "zed"): (10_000, 1_000)}
    assert out.skipped == 1  # the row without counters


def test_router_view_queues_bytes_upload_download_with_rate_for_a_first_sight() -> None:
    directory, counters = _directory(), CounterRates()
    rows = [
        _queue("<hotspot-carol>", "10.5.0.2/32", 1_000, 10_000, rate="8000/64000"),
        _queue("dan-queue", "10.9.0.4/32", 0, 0, rate="0/0"),
        _queue("<pppoe-alice>", "<pppoe-alice>", 5, 5),  # the interface counts it already
        _queue("<hotspot-stranger>", "10.5.0.9/32", 0, 0, rate="1000/2000"),
        _queue("uplink", "10.0.0.0/8", 0, 0, rate="9/9"),
    ]
    first = Rates()
    queue_rates(rows, directory, counters, 0.0, first)
    assert first.customers == {"carol": (64_000, 8_000), "dan": (0, 0)}
    assert first.unknown == {("hotspot", "stranger"): (2_000, 1_000)}
    second = Rates()
    rows[0] = _queue("<hotspot-carol>", "10.5.0.2/32", 26_000, 260_000, rate="1/1")
    queue_rates(rows, directory, counters, 2.0, second)
    assert second.customers["carol"] == (1_000_000, 100_000)


def _session(kind: SessionKind, name: str, address: str = "10.0.0.1") -> Session:
    return Session(
        kind=kind, id=f"*{name}", name=name, address=address, caller_id=None, uptime_s=60, seen=0.0
    )


def test_router_view_counts_everyone_lists_unknowns_and_ranks_by_download() -> None:
    directory = _directory()
    rates = Rates(
        customers={"alice": (9_000_000, 100), "carol": (1_000_000, 900_000), "dan": (5_000_000, 1)},
        unknown={("pppoe", "zed"): (500, 50)},
    )
    sessions = [_session("pppoe", "alice"), _session("pppoe", "bob"), _session("pppoe", "zed")]
    view = build_view(directory, sessions, rates, now=10.0)
    assert (view.online, view.customers) == (3, 3)
    assert (view.download_bps, view.upload_bps) == (15_000_500, 900_151)
    by_id = {row["customer_id"]: row for row in view.rows}
    assert by_id["bob"]["download_bps"] is None and by_id["bob"]["session"]["uptime_s"] == 70
    assert by_id["dan"]["session"] is None and by_id["dan"]["download_bps"] == 5_000_000
    assert view.unknown == [
        {
            "kind": "pppoe",
            "name": "zed",
            "address": "10.0.0.1",
            "caller_id": None,
            "uptime_s": 70,
            "download_bps": 500,
            "upload_bps": 50,
        }
    ]
    assert [row["customer_id"] for row in view.top(2)] == ["alice", "dan"]
    frame_row = top_json(view.top(1)[0], monitored=True)
    assert frame_row["download_utilization"] == 90.0 and frame_row["monitored"] is True
    state = view.state(interval=2.0, cycle_ms=12)
    assert state["status"] == "ok" and state["interval_ms"] == 2000 and len(state["rows"]) == 4
