"""The ping's part of the message: `latency` entries, `rtt_ms` on samples, `started.ping`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tasks.message import (
    PING_CAPPED,
    PING_STATES,
    CustomerMeta,
    MessageError,
    decode_entry,
    latency_entry,
    status_entry,
    traffic_from_row,
)

PPPOE = CustomerMeta(
    customer_id="c-1",
    customer_name="Alice",
    username="alice",
    service_type="pppoe",
    interface="<pppoe-alice>",
    router="core-1",
)
PPPOE_ROW = {"name": "<pppoe-alice>", "rx-bits-per-second": "159176", "tx-bits-per-second": "5230000"}
WHEN = datetime(2026, 11, 24, 10, 21, 44, 123456, tzinfo=UTC)


def _round_trip(fields: dict[str, str]) -> dict[str, object]:
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    return decode_entry(b"1795515833349-0", {k.encode(): v.encode() for k, v in fields.items()})


def test_message_latency_entry_is_typed_and_carries_no_seq() -> None:
    msg = _round_trip(
        latency_entry(
            PPPOE,
            address="10.64.0.7",
            ping_seq=12,
            rtt_ms=9.5624,
            status=None,
            loss_pct=10.0,
            session_id="s-9",
            fence=42,
            timestamp=WHEN,
        )
    )
    assert msg["type"] == "latency" and msg["address"] == "10.64.0.7"
    assert msg["ping_seq"] == 12 and msg["rtt_ms"] == 9.562 and msg["status"] is None
    assert msg["loss_pct"] == 10.0
    assert msg["customer_id"] == "c-1"
    # The rest of the customer's metadata is on its samples and status events, not here.
    assert not {"customer_name", "username", "service_type", "interface", "router", "package"} & set(msg)
    assert msg["session_id"] == "s-9" and msg["fence"] == 42
    assert msg["timestamp"] == "2026-11-24T10:21:44.123Z"
    assert "seq" not in msg, "the session's seq counts traffic and status entries only"
    json.dumps(msg)


def test_message_latency_entry_of_a_lost_probe_has_null_rtt_and_the_routers_words() -> None:
    msg = _round_trip(
        latency_entry(
            PPPOE,
            address="10.64.0.7",
            ping_seq=None,
            rtt_ms=None,
            status="host unreachable",
            loss_pct=100.0,
            session_id="s",
            fence=1,
        )
    )
    assert msg["rtt_ms"] is None and msg["ping_seq"] is None
    assert msg["status"] == "host unreachable" and msg["loss_pct"] == 100.0


def test_message_latency_rtt_keeps_three_decimals_at_most() -> None:
    def rtt(value: float) -> str:
        fields = latency_entry(
            PPPOE, address="a", ping_seq=0, rtt_ms=value, status=None, loss_pct=0.0, session_id="s", fence=1
        )
        return fields["rtt_ms"]

    assert [rtt(v) for v in (0.0, 12.0, 12.5, 0.4734, 180.0006)] == ["0", "12", "12.5", "0.473", "180.001"]
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(MessageError, match="rtt_ms"):
            rtt(bad)


def test_message_latency_loss_outside_a_percent_is_refused() -> None:
    with pytest.raises(MessageError, match="loss_pct"):
        latency_entry(
            PPPOE, address="a", ping_seq=0, rtt_ms=1.0, status=None, loss_pct=101.0, session_id="s", fence=1
        )


def test_message_traffic_carries_rtt_ms_or_null() -> None:
    with_rtt = _round_trip(traffic_from_row(PPPOE_ROW, PPPOE, session_id="s", seq=1, fence=1, rtt_ms=18.65))
    assert with_rtt["rtt_ms"] == 18.65 and with_rtt["download_bps"] == 5_230_000
    without = _round_trip(traffic_from_row(PPPOE_ROW, PPPOE, session_id="s", seq=1, fence=1))
    assert "rtt_ms" in without and without["rtt_ms"] is None


def test_message_started_says_whether_the_monitor_pings() -> None:
    for state in PING_STATES:
        msg = _round_trip(status_entry("started", PPPOE, session_id="s", seq=0, fence=1, ping=state))
        assert msg["ping"] == state
    plain = _round_trip(status_entry("resumed", PPPOE, session_id="s", seq=2, fence=1))
    assert "ping" not in plain
    with pytest.raises(MessageError, match="ping"):
        status_entry("started", PPPOE, session_id="s", seq=0, fence=1, ping="maybe")
    with pytest.raises(MessageError, match="ping"):
        status_entry("stopped", PPPOE, session_id="s", seq=0, fence=1, reason="x", ping=PING_CAPPED)
