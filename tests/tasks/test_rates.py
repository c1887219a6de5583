"""Rates from byte counters: deltas over time, and a reset or wrap is never a spike."""

from __future__ import annotations

import pytest

from tasks.message import MessageError
from tasks.rates import CounterRates, counter_rate, parse_counter, parse_counter_pair


def test_rates_counter_delta_is_bits_per_second() -> None:
    assert counter_rate(1_000, 251_000, 2.0) == 1_000_000
    assert counter_rate(5, 5, 2.0) == 0


def test_rates_counter_going_backwards_or_no_time_gives_no_rate() -> None:
    assert counter_rate(10_000_000, 1_500, 2.0) is None  # a reconnect: a new interface from 0
    assert counter_rate(2**64 - 10, 20, 2.0) is None  # a 64-bit wrap is a reset too
    assert counter_rate(1, 2, 0.0) is None


def test_rates_first_reading_is_a_baseline_then_rates_follow() -> None:
    rates = CounterRates()
    assert rates.update("<pppoe-a>", 1_000, 100, 10.0) is None
    assert rates.update("<pppoe-a>", 126_000, 12_600, 11.0) == (1_000_000, 100_000)
    assert rates.update("<pppoe-a>", 126_000, 12_600, 13.0) == (0, 0)


def test_rates_reset_in_either_direction_skips_one_cycle_and_rebases() -> None:
    rates = CounterRates()
    rates.update("q", 9_000_000, 9_000_000, 0.0)
    assert rates.update("q", 9_500_000, 40, 2.0) is None  # upload counter went back: reset
    assert rates.update("q", 9_750_000, 290, 4.0) == (1_000_000, 1_000)


def test_rates_forget_makes_the_next_reading_a_baseline_however_high() -> None:
    rates = CounterRates()
    rates.update("<pppoe-a>", 1_000, 1_000, 0.0)
    rates.forget("<pppoe-a>")  # reconnected, and already past the old counter
    assert rates.update("<pppoe-a>", 50_000_000, 1_000_000, 2.0) is None
    assert rates.update("<pppoe-a>", 50_250_000, 1_025_000, 4.0) == (1_000_000, 100_000)


def test_rates_keep_only_drops_what_the_router_no_longer_shows() -> None:
    rates = CounterRates()
    for name in ("a", "b", "c"):
        rates.update(name, 1, 1, 0.0)
    rates.keep_only(["b"])
    assert len(rates) == 1
    assert rates.update("a", 100, 100, 1.0) is None


def test_rates_queue_bytes_pair_is_upload_then_download() -> None:
    assert parse_counter_pair("45666/172388", "bytes") == (172_388, 45_666)
    with pytest.raises(MessageError, match="bytes"):
        parse_counter_pair("45666", "bytes")
    with pytest.raises(MessageError, match="tx-byte"):
        parse_counter("-3", "tx-byte")
    with pytest.raises(MessageError, match="rx-byte"):
        parse_counter(None, "rx-byte")
