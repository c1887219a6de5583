"""routeros/ping.py: rows of /ping as real routers send them (docs/routeros.md, Ping)."""

from __future__ import annotations

import pytest

from routeros.ping import PingParseError, PingReply, parse_duration_ms, parse_ping_row


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0ms", 0.0),
        ("10ms", 10.0),
        ("1ms473us", 1.473),
        ("9ms562us", 9.562),
        ("19ms2us", 19.002),
        ("473us", 0.473),
        ("1s2ms", 1002.0),
        ("1m3s", 63000.0),
        ("12", 12.0),
        ("0.5", 0.5),
        ("00:00:01.5", 1500.0),
        (" 3ms ", 3.0),
    ],
)
def test_parse_duration_ms_reads_router_durations(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["", "ms", "10 ms", "-3ms", "1x", "3ms1", "1e400", "9" * 41, "nan", "1:2"])
def test_parse_duration_ms_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_parse_ping_row_reads_the_captured_api_row() -> None:
    # The real row kept in tik4net's ToolPing.cs (docs/routeros.md, Ping).
    row = {
        "seq": "0",
        "host": "172.16.100.1",
        "size": "56",
        "ttl": "64",
        "time": "0ms",
        "sent": "1",
        "received": "1",
        "packet-loss": "0",
        "min-rtt": "0ms",
        "avg-rtt": "0ms",
        "max-rtt": "0ms",
    }
    assert parse_ping_row(row) == PingReply(
        seq=0,
        host="172.16.100.1",
        rtt_ms=0.0,
        status=None,
        sent=1,
        received=1,
        packet_loss=0,
        summary=False,
    )


def test_parse_ping_row_timeout_has_status_and_no_rtt() -> None:
    row = {
        "seq": "3",
        "host": "10.64.0.7",
        "status": "timeout",
        "sent": "4",
        "received": "3",
        "packet-loss": "25",
    }
    reply = parse_ping_row(row)
    assert (reply.seq, reply.rtt_ms, reply.status, reply.packet_loss, reply.summary) == (
        3,
        None,
        "timeout",
        25,
        False,
    )


def test_parse_ping_row_keeps_the_routers_words_for_unreachable() -> None:
    reply = parse_ping_row({"seq": "0", "host": "192.0.2.9", "status": "host unreachable", "sent": "1"})
    assert reply.status == "host unreachable"
    assert reply.rtt_ms is None


def test_parse_ping_row_row_with_sent_and_no_seq_is_summary() -> None:
    reply = parse_ping_row(
        {"sent": "5", "received": "5", "packet-loss": "0%", "min-rtt": "9ms562us", "avg-rtt": "10ms562us"}
    )
    assert reply.summary is True
    assert (reply.seq, reply.rtt_ms, reply.status, reply.sent, reply.packet_loss) == (None, None, None, 5, 0)


def test_parse_ping_row_reads_v7_microseconds_in_time() -> None:
    assert parse_ping_row({"seq": "1", "host": "h", "time": "18ms650us"}).rtt_ms == pytest.approx(18.65)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"seq": "x", "time": "1ms"}, "seq"),
        ({"seq": "-1", "time": "1ms"}, "seq"),
        ({"seq": "1", "time": "soon"}, "time"),
        ({"seq": "1"}, "time"),
        ({"seq": "1", "time": "1ms", "sent": "9" * 400}, "sent"),
        ({"seq": "1", "time": "1ms", "packet-loss": "150"}, "packet-loss"),
        ({"seq": "1", "time": "1ms", "packet-loss": "lots"}, "packet-loss"),
    ],
)
def test_parse_ping_row_unreadable_field_is_named(row: dict[str, str], field: str) -> None:
    with pytest.raises(PingParseError) as info:
        parse_ping_row(row)
    assert info.value.field == field
    assert field in str(info.value)
