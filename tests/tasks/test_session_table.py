"""The watch's session tables: a print, then listen rows; ups, downs and reconnects."""

from __future__ import annotations

import pytest

from tasks.session_table import SessionTable, parse_duration


def _ppp(item: str, name: str, address: str = "10.0.0.1", uptime: str = "1m") -> dict[str, str]:
    return {".id": item, "name": name, "address": address, "caller-id": "AA:BB:CC:DD:EE:01", "uptime": uptime}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3w4d12h23m12s", 3 * 604800 + 4 * 86400 + 12 * 3600 + 23 * 60 + 12),
        ("1m5s570ms", 65),
        ("45s", 45),
        ("00:01:02", 62),
        ("2d03:00:00", 2 * 86400 + 3 * 3600),
        ("", None),
        ("soon", None),
        ("5x", None),
        (None, None),
    ],
)
def test_session_table_parses_routeros_durations(text: str | None, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


def test_session_table_first_print_is_no_event() -> None:
    table = SessionTable("pppoe")
    up, down = table.load([_ppp("*1", "alice"), _ppp("*2", "bob")], now=100.0)
    assert (up, down) == ([], [])
    assert {s.name for s in table.sessions()} == {"alice", "bob"}
    alice = table.by_id["*1"]
    assert (alice.address, alice.caller_id, alice.uptime_s) == ("10.0.0.1", "AA:BB:CC:DD:EE:01", 60)
    assert alice.uptime_at(130.5) == 90


@pytest.mark.parametrize("dead", ["yes", "true"])
def test_session_table_listen_new_row_is_up_and_dead_row_is_down(dead: str) -> None:
    table = SessionTable("pppoe")
    table.load([_ppp("*1", "alice")], now=0.0)
    change = table.apply(_ppp("*2", "bob", uptime="0s"), now=5.0)
    assert change is not None and change[0] == "up" and change[1].name == "bob"
    change = table.apply({".id": "*1", ".dead": dead}, now=20.0)
    assert change is not None and change[0] == "down" and change[1].name == "alice"
    assert change[1].uptime_s == 80  # 1m at the print, 20 s later
    assert list(table.by_id) == ["*2"]


def test_session_table_reconnect_is_down_then_up_with_a_new_id() -> None:
    table = SessionTable("pppoe")
    table.load([_ppp("*1", "alice", address="10.0.0.1")], now=0.0)
    assert table.apply({".id": "*1", ".dead": "true"}, now=1.0) is not None
    change = table.apply(_ppp("*9", "alice", address="10.0.0.9", uptime="0s"), now=2.0)
    assert change is not None and change[0] == "up" and change[1].address == "10.0.0.9"


def test_session_table_repeated_and_unknown_rows_change_nothing() -> None:
    table = SessionTable("pppoe")
    table.load([_ppp("*1", "alice")], now=0.0)
    assert table.apply(_ppp("*1", "alice", address="10.0.0.5"), now=1.0) is None  # an update
    assert table.by_id["*1"].address == "10.0.0.5"
    assert table.apply({".id": "*7", ".dead": "yes"}, now=1.0) is None  # raced the print
    assert table.apply({".id": "*1", "address": "10.0.0.6"}, now=2.0) is None  # a partial update
    assert table.by_id["*1"].name == "alice" and table.by_id["*1"].address == "10.0.0.6"
    assert table.apply({"name": "nobody"}, now=2.0) is None  # no .id


def test_session_table_reprint_after_a_reconnect_says_what_changed() -> None:
    table = SessionTable("hotspot")
    row = {
        ".id": "*1",
        "user": "carol",
        "address": "10.5.0.2",
        "mac-address": "AA:00:00:00:00:01",
        "uptime": "5s",
    }
    table.load([row], now=0.0)
    assert table.by_id["*1"].caller_id == "AA:00:00:00:00:01"
    up, down = table.load([{**row, ".id": "*4", "user": "dave"}], now=30.0)
    assert [s.name for s in up] == ["dave"] and [s.name for s in down] == ["carol"]
