"""Retry delays: exponential, capped, jittered, reset on success; the client's immediate first retry."""

from __future__ import annotations

import pytest

from common.backoff import Backoff


def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0)
    for failures in range(10):
        ceiling = min(8.0, 0.5 * 2**failures)
        delay = backoff.next_delay()
        # Half to full delay: never zero (no spinning), never above the cap.
        assert ceiling / 2 <= delay <= ceiling


def test_backoff_reset_starts_over() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0)
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert backoff.failures == 0
    assert 0.25 <= backoff.next_delay() <= 0.5


def test_backoff_jitter_spreads_retries() -> None:
    delays = {round(Backoff(initial=1.0, maximum=30.0).next_delay(), 6) for _ in range(50)}
    # A thousand monitors of one dead router must not retry in lockstep.
    assert len(delays) > 40


def test_backoff_stays_capped_after_days_of_failures() -> None:
    backoff = Backoff(initial=0.5, maximum=15.0)
    for _ in range(5000):  # ~ a day of retries at the cap
        delay = backoff.next_delay()
    assert 7.5 <= delay <= 15.0


def test_backoff_exponent_is_bounded_for_a_tiny_initial_delay() -> None:
    backoff = Backoff(initial=1e-300, maximum=1e300)
    backoff.failures = 10**6  # 2**1e6 would overflow a float
    assert 0.5e300 <= backoff.next_delay() <= 1e300


def test_backoff_defaults_match_the_engine_retry_ladder() -> None:
    # tasks/backoff.py's Backoff() must keep its meaning after the switch to this class.
    backoff = Backoff()
    assert (backoff.initial, backoff.maximum, backoff.first_immediate) == (0.5, 15.0, False)
    assert 0.25 <= backoff.next_delay() <= 0.5


def test_backoff_first_immediate_first_delay_is_near_zero_then_ladder_goes_on() -> None:
    backoff = Backoff(initial=0.2, maximum=30.0, first_immediate=True)
    first = [Backoff(initial=0.2, maximum=30.0, first_immediate=True).next_delay() for _ in range(50)]
    assert all(0 <= d <= 0.1 for d in first)
    assert min(first) < 0.05  # drawn from [0, initial/2], not from the half-to-full band
    backoff.next_delay()
    for failures in range(1, 10):
        ceiling = min(30.0, 0.2 * 2**failures)
        assert ceiling / 2 <= backoff.next_delay() <= ceiling


def test_backoff_first_immediate_comes_back_after_reset() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, first_immediate=True)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 0.5


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_backoff_rejects_values_that_would_spin_or_invert(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial=initial, maximum=maximum)
