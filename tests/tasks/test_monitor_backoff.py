"""The monitor's retry delays: exponential, capped, jittered, reset on success."""

from __future__ import annotations

from tasks.backoff import Backoff


def test_monitor_backoff_grows_exponentially_within_jitter_bounds() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0)
    for failures in range(10):
        ceiling = min(8.0, 0.5 * 2**failures)
        delay = backoff.next_delay()
        # Half to full delay: never zero (no spinning), never above the cap.
        assert ceiling / 2 <= delay <= ceiling


def test_monitor_backoff_reset_starts_over() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0)
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5


def test_monitor_backoff_jitter_spreads_retries() -> None:
    delays = {round(Backoff(initial=1.0, maximum=30.0).next_delay(), 6) for _ in range(50)}
    # A thousand monitors of one dead router must not retry in lockstep.
    assert len(delays) > 40


def test_monitor_backoff_stays_capped_after_days_of_failures() -> None:
    backoff = Backoff(initial=0.5, maximum=15.0)
    for _ in range(5000):  # ~ a day of retries at the cap
        delay = backoff.next_delay()
    assert 7.5 <= delay <= 15.0
