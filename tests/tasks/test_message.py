"""The message schema: directions, raw strings, human speeds, parsing, encode/decode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tasks.message import (
    MAX_RATE,
    CustomerMeta,
    MessageError,
    RouterMeta,
    decode_entry,
    format_bps,
    parse_pair,
    parse_rate,
    rates_from_interface,
    rates_from_queue,
    session_entry,
    status_entry,
    top_entries,
    top_row,
    traffic_entry,
    traffic_from_row,
)

PPPOE = CustomerMeta(
    customer_id="c-1",
    customer_name="Alice",
    username="alice",
    service_type="pppoe",
    interface="<pppoe-alice>",
    router="core-1",
    package="home-10M",
    package_download_bps=10_000_000,
    package_upload_bps=5_000_000,
)
HOTSPOT = CustomerMeta(
    customer_id="c-2",
    customer_name="Bob",
    username="bob",
    service_type="hotspot",
    interface="<hotspot-bob>",
    router="core-1",
)
PPPOE_ROW = {
    "name": "<pppoe-alice>",
    "rx-bits-per-second": "159176",
    "tx-bits-per-second": "5230000",
    "rx-packets-per-second": "31",
    "tx-packets-per-second": "452",
    "fp-rx-bits-per-second": "0",
    ".section": "3",
}
WHEN = datetime(2026, 11, 24, 10, 21, 44, 123456, tzinfo=UTC)


def test_message_pppoe_tx_is_download_and_rx_upload() -> None:
    rates = rates_from_interface(PPPOE_ROW)
    assert rates.download_bps == 5_230_000 and rates.upload_bps == 159_176
    assert rates.download_pps == 452 and rates.upload_pps == 31
    # raw strings keep the router's own view
    assert rates.tx_bits_per_second == "5230000" and rates.rx_bits_per_second == "159176"


def test_message_queue_pairs_are_upload_then_download() -> None:
    rates = rates_from_queue(
        {
            "name": "<hotspot-bob>",
            "rate": "17424/62464",
            "packet-rate": "16/30",
            "max-limit": "1000000/2000000",
        }
    )
    assert rates.upload_bps == 17_424 and rates.download_bps == 62_464
    assert rates.upload_pps == 16 and rates.download_pps == 30
    # rx = what the router received from the customer = the upload half
    assert rates.rx_bits_per_second == "17424" and rates.tx_bits_per_second == "62464"
    assert parse_pair("1M/10M", "max-limit") == (1_000_000, 10_000_000)


def test_message_human_speeds_use_si_with_two_decimals() -> None:
    assert format_bps(0) == "0.00 bps"
    assert format_bps(999) == "999.00 bps"
    assert format_bps(950_000) == "950.00 kbps"
    assert format_bps(5_230_000) == "5.23 Mbps"
    assert format_bps(999_999) == "1.00 Mbps"
    assert format_bps(1_250_000_000) == "1.25 Gbps"
    with pytest.raises(MessageError):
        format_bps(-1)


def test_message_rates_accept_an_optional_unit_suffix() -> None:
    assert parse_rate("159176", "f") == 159_176
    assert parse_rate(" 27.8kbps ", "f") == 27_800
    assert parse_rate("1.5 Mbps", "f") == 1_500_000
    assert parse_rate("10M", "f") == 10_000_000
    assert parse_rate("12pps", "f") == 12
    assert parse_rate("0", "f") == 0


@pytest.mark.parametrize("bad", ["", "  ", "abc", "-5", "1e5", "nan", "5 Xbps", "1/2", "0x10", "5 kbpsx"])
def test_message_bad_values_are_refused_with_the_field_name(bad: str) -> None:
    with pytest.raises(MessageError, match="tx-bits-per-second"):
        rates_from_interface({"rx-bits-per-second": "1", "tx-bits-per-second": bad})


ABSURD_RATES = [
    "1" * 400,  # float() reads it as inf, and int(round(inf)) raised OverflowError
    "9" * 300,  # finite, but a 300-digit "rate" went into the stream as it was
    "1" * (1 << 20),  # a whole reply word of digits
    "1e400",
    "inf",
    "-inf",
    "nan",
    "-1",
    "1000000000000001",  # MAX_RATE + 1
    "1000.000000001T",
    "9" * 39 + "T",
]


@pytest.mark.parametrize("absurd", ABSURD_RATES, ids=lambda v: v if len(v) < 20 else f"{v[:6]}...({len(v)})")
def test_message_absurd_rates_are_refused_as_message_errors(absurd: str) -> None:
    # MessageError is what the monitor skips a sample for; anything else ended it.
    with pytest.raises(MessageError, match="tx-bits-per-second"):
        rates_from_interface({"rx-bits-per-second": "1", "tx-bits-per-second": absurd})
    with pytest.raises(MessageError, match="rate"):
        rates_from_queue({"rate": f"1/{absurd}"})
    with pytest.raises(MessageError, match="packet-rate"):
        rates_from_queue({"rate": "1/2", "packet-rate": f"{absurd}/2"})


def test_message_rates_up_to_the_bound_are_kept_exactly() -> None:
    assert parse_rate(str(MAX_RATE), "f") == MAX_RATE
    assert parse_rate("1000T", "f") == MAX_RATE
    assert parse_rate("400Gbps", "f") == 400_000_000_000
    entry = decode_entry(
        "1-0",
        traffic_from_row(
            {"rx-bits-per-second": "0", "tx-bits-per-second": str(MAX_RATE)},
            HOTSPOT,
            session_id="s",
            seq=0,
            fence=1,
        ),
    )
    assert entry["download_bps"] == MAX_RATE and json.loads(json.dumps(entry))["download_bps"] == MAX_RATE


def test_message_bad_rows_are_refused() -> None:
    with pytest.raises(MessageError, match="rx-bits-per-second"):
        rates_from_interface({"tx-bits-per-second": "1"})
    with pytest.raises(MessageError, match="rate"):
        rates_from_queue({"rate": "100"})
    with pytest.raises(MessageError, match="rate"):
        rates_from_queue({"rate": "1/2/3"})
    with pytest.raises(MessageError, match="packet-rate"):
        rates_from_queue({"rate": "1/2", "packet-rate": "x/2"})


def test_message_traffic_entry_roundtrips_to_json_ready_dict() -> None:
    fields = traffic_from_row(PPPOE_ROW, PPPOE, session_id="s-9", seq=7, fence=42, timestamp=WHEN)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    encoded = {k.encode(): v.encode() for k, v in fields.items()}  # as redis-py returns them
    msg = decode_entry(b"1795515833349-0", encoded)
    assert list(msg)[0] == "id" and msg["id"] == "1795515833349-0"
    assert msg["type"] == "traffic"
    assert msg["customer_id"] == "c-1" and msg["customer_name"] == "Alice"
    assert msg["username"] == "alice" and msg["service_type"] == "pppoe"
    assert msg["interface"] == "<pppoe-alice>" and msg["router"] == "core-1"
    assert msg["rx_bits_per_second"] == "159176" and msg["tx_bits_per_second"] == "5230000"
    assert msg["download_bps"] == 5_230_000 and msg["upload_bps"] == 159_176
    assert msg["download_speed"] == "5.23 Mbps" and msg["upload_speed"] == "159.18 kbps"
    assert msg["download_pps"] == 452 and msg["upload_pps"] == 31
    assert msg["package"] == "home-10M"
    assert msg["package_download_bps"] == 10_000_000 and msg["package_upload_bps"] == 5_000_000
    assert msg["download_utilization"] == 52.3 and msg["upload_utilization"] == 3.18
    assert msg["timestamp"] == "2026-11-24T10:21:44.123Z"
    assert msg["seq"] == 7 and msg["session_id"] == "s-9" and msg["fence"] == 42
    json.dumps(msg)


def test_message_without_package_has_null_package_fields() -> None:
    rates = rates_from_queue({"rate": "1000/2000"})
    msg = decode_entry("1-0", traffic_entry(HOTSPOT, rates, session_id="s", seq=1, fence=1))
    assert msg["package"] is None and msg["package_download_bps"] is None
    assert msg["download_utilization"] is None and msg["upload_utilization"] is None
    assert msg["download_pps"] is None


def test_message_status_events_carry_reason_and_metadata() -> None:
    msg = decode_entry(
        "2-0",
        status_entry(
            "stopped", PPPOE, session_id="s", seq=3, fence=None, reason="stop requested", timestamp=WHEN
        ),
    )
    assert msg["type"] == "stopped" and msg["reason"] == "stop requested"
    assert msg["fence"] is None and msg["customer_name"] == "Alice" and msg["seq"] == 3
    assert "download_bps" not in msg
    offline = decode_entry("3-0", status_entry("offline", PPPOE, session_id="s", seq=4, fence=5))
    assert offline["reason"] is None and offline["fence"] == 5
    with pytest.raises(MessageError, match="reason"):
        status_entry("stopped", PPPOE, session_id="s", seq=1, fence=1)
    with pytest.raises(MessageError, match="type"):
        status_entry("traffic", PPPOE, session_id="s", seq=1, fence=1)


def test_message_timestamps_are_rfc3339_utc() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=3)))
    entry = status_entry("started", PPPOE, session_id="s", seq=0, fence=1, timestamp=local)
    assert entry["timestamp"] == "2026-11-24T10:21:44.123Z"
    assert status_entry("started", PPPOE, session_id="s", seq=0, fence=1)["timestamp"].endswith("Z")


def test_message_decode_refuses_a_corrupt_integer() -> None:
    with pytest.raises(MessageError, match="seq"):
        decode_entry("1-0", {"type": "traffic", "seq": "seven"})


ROUTER = RouterMeta(router="mikrotik-001", router_name="core-1")


def test_message_top_frame_summary_is_the_frame_without_its_list() -> None:
    rows = [top_row(PPPOE, 5_000_000, 250_000, monitored=True), top_row(HOTSPOT, 1_000, 10, monitored=False)]
    summary, whole = top_entries(
        ROUTER,
        online=3,
        unknown=1,
        customers=2,
        download_bps=5_001_000,
        upload_bps=250_010,
        interval=2.0,
        cycle_ms=14,
        rows=rows,
        fence=9,
        timestamp=WHEN,
    )
    assert "top" not in summary and {k: v for k, v in whole.items() if k != "top"} == summary
    frame = decode_entry("1-0", whole)
    assert frame["type"] == "top" and frame["router"] == "mikrotik-001" and frame["router_name"] == "core-1"
    assert (frame["online"], frame["unknown"], frame["customers"]) == (3, 1, 2)
    assert (frame["download_bps"], frame["upload_bps"], frame["interval_ms"], frame["cycle_ms"]) == (
        5_001_000,
        250_010,
        2000,
        14,
    )
    assert frame["download_speed"] == "5.00 Mbps"
    first, second = frame["top"]
    assert first["customer_id"] == "c-1" and first["monitored"] is True
    assert (first["download_utilization"], first["upload_utilization"]) == (50.0, 5.0)
    assert second["download_utilization"] is None and second["package_download_bps"] is None


def test_message_session_event_carries_the_session_and_no_secret() -> None:
    entry = session_entry(
        "session_up",
        ROUTER,
        PPPOE,
        session="pppoe",
        name="alice",
        address="10.1.0.7",
        caller_id="AA:BB:CC:00:11:22",
        uptime_s=5,
        fence=3,
        timestamp=WHEN,
    )
    decoded = decode_entry("2-0", entry)
    assert (
        decoded["type"] == "session_up"
        and decoded["customer_id"] == "c-1"
        and decoded["router"] == "mikrotik-001"
    )
    assert (decoded["address"], decoded["caller_id"], decoded["uptime_s"], decoded["reason"]) == (
        "10.1.0.7",
        "AA:BB:CC:00:11:22",
        5,
        None,
    )
    down = decode_entry(
        "3-0",
        session_entry(
            "session_down",
            ROUTER,
            PPPOE,
            session="pppoe",
            name="alice",
            address=None,
            caller_id=None,
            uptime_s=None,
            fence=3,
        ),
    )
    assert down["address"] is None and down["uptime_s"] is None
    with pytest.raises(MessageError, match="type"):
        session_entry(
            "stopped",
            ROUTER,
            PPPOE,
            session="pppoe",
            name="a",
            address=None,
            caller_id=None,
            uptime_s=None,
            fence=1,
        )


def test_message_decode_refuses_a_top_list_that_is_not_json() -> None:
    with pytest.raises(MessageError, match="top"):
        decode_entry("1-0", {"type": "top", "top": "[{"})
