"""Rates from byte counters read once per cycle: the router watch's arithmetic.

A counter pair (download bytes, upload bytes) read at two moments gives bits per
second: delta × 8 / elapsed. Two things make a delta lie, and neither may show as a
spike:
- a reset: a PPPoE reconnect makes a new `<pppoe-…>` interface whose counters start
  again from 0 (docs/routeros.md, Directions), and a hotspot re-login a new dynamic
  queue. The counter goes backwards: no rate this cycle, the new value is the baseline.
  A reconnect whose new counter already passed the old one cannot be seen in the
  numbers; the watch knows it from the session's listen events and calls `forget`.
- a wrap: the counters are 64-bit, so a wrap is not expected in practice; one would
  also go backwards and is treated as a reset (one cycle without a rate, never 2**64).
Directions are the caller's: it passes (download, upload) already mapped (on a
`<pppoe-…>` interface tx is the download; a queue's `bytes` is upload/download).
"""

from __future__ import annotations

from collections.abc import Iterable

from tasks.message import MessageError, split_pair

# (download bytes, upload bytes, when: monotonic seconds)
_Reading = tuple[int, int, float]


def counter_rate(before: int, after: int, elapsed: float) -> int | None:
    """Bits per second between two readings of one byte counter; None when the counter
    went backwards (reset or wrap) or no time passed."""
    if elapsed <= 0 or after < before:
        return None
    return int((after - before) * 8 / elapsed)


def parse_counter(value: str | None, field: str) -> int:
    """A byte counter as the router writes it ("123456"): a non-negative integer."""
    if value is None or not value.isdigit():
        raise MessageError(f"{field}: not a byte counter: {str(value)[:40]!r}")
    return int(value)


def parse_counter_pair(value: str | None, field: str) -> tuple[int, int]:
    """A simple queue's `bytes` "UPLOAD/DOWNLOAD" -> (download, upload)."""
    if value is None:
        raise MessageError(f"{field}: missing")
    up, down = split_pair(value, field)
    return parse_counter(down, field), parse_counter(up, field)


class CounterRates:
    """The previous reading of every counter pair (by key: an interface or queue name),
    and the rates since. Memory follows what the router shows: `keep_only` after each
    cycle drops what was not seen."""

    def __init__(self) -> None:
        self._last: dict[str, _Reading] = {}

    def __len__(self) -> int:
        return len(self._last)

    def update(self, key: str, download: int, upload: int, when: float) -> tuple[int, int] | None:
        """Record this reading; (download bps, upload bps) since the previous one, or None
        for a first reading or a reset (either direction going backwards)."""
        last = self._last.get(key)
        self._last[key] = (download, upload, when)
        if last is None:
            return None
        elapsed = when - last[2]
        down = counter_rate(last[0], download, elapsed)
        up = counter_rate(last[1], upload, elapsed)
        if down is None or up is None:
            return None
        return down, up

    def forget(self, key: str) -> None:
        """The thing behind `key` was replaced (a session reconnected): the next reading
        is a baseline, whatever its value."""
        self._last.pop(key, None)

    def keep_only(self, keys: Iterable[str]) -> None:
        seen = set(keys)
        for key in [k for k in self._last if k not in seen]:
            del self._last[key]
