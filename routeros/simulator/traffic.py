"""Seeded per-customer traffic: a small state machine stepped once per simulated second.

Every stream, print and queue that looks at a customer reads the same Traffic object, so
cost is one step per customer per second no matter how many monitors watch it, and
nothing at all for a customer nobody looks at (it catches up when next read).
Directions are the customer's: "down" = router transmits to the customer (tx on
<pppoe-…>), "up" = router receives from the customer (rx).

One traffic function feeds both views of it. Within simulated second k the rates are
constant (``down_bps``...); the counters are their integral, continuous in time
(`counters`); and the rate a router reports at time t is the average over the second
before t (`rates`), which is exactly what the counters grew by over that second. So a
client reading byte counters at any times sees the sum of what monitor-traffic streamed
over the same span, within rounding (docs/routeros.md, Router-wide tables).
Times are whole milliseconds of simulated time.
"""

from __future__ import annotations

import random

__all__ = ["Traffic"]

_IDLE, _BROWSE, _STREAM, _BULK, _UPLOAD = range(5)
# Next-state weights.  Upload-heavy episodes are rare so that download > upload most
# of the time, as on a real access network.
_NEXT_STATES = (_IDLE, _BROWSE, _STREAM, _BULK, _UPLOAD)
_NEXT_WEIGHTS = (0.34, 0.30, 0.17, 0.13, 0.06)
_DURATION = {_IDLE: (5, 90), _BROWSE: (10, 90), _STREAM: (30, 240), _BULK: (5, 45), _UPLOAD: (5, 30)}
_DOWN_PACKET_BYTES = 1300
_UP_PACKET_BYTES = 1000
_CATCH_UP_LIMIT = 30  # after a longer gap, integrate counters in one go instead of stepping


class Traffic:
    __slots__ = (
        "_rng",
        "down_cap",
        "up_cap",
        "_state",
        "_left",
        "_level",
        "sec",
        "down_bps",
        "up_bps",
        "down_pps",
        "up_pps",
        "queue_drops",
        "_prev",
        "down_bits",
        "up_bits",
        "down_packets",
        "up_packets",
        "_sat",
        "_sat_until",
    )

    def __init__(self, seed: int, down_cap: int, up_cap: int, start_sec: int = 0) -> None:
        self._rng = random.Random(seed)
        self.down_cap = max(1, down_cap)
        self.up_cap = max(1, up_cap)
        self.sec = start_sec
        self._sat: float | None = None  # Simulator.saturate: download at this share of the plan
        self._sat_until: int | None = None  # ... until this second (None: until unsaturate)
        self._state = self._rng.choices(_NEXT_STATES, _NEXT_WEIGHTS)[0]
        self._left = self._rng.randint(*_DURATION[self._state])
        self._level = self._rng.uniform(0.25, 0.6)
        self._rates()
        # The rates of the second before `sec` (up_bps, down_bps, up_pps, down_pps).
        self._prev = (self.up_bps, self.down_bps, self.up_pps, self.down_pps)
        # Counters at the start of second `sec`. Pre-existing sessions have carried
        # traffic before the simulator started.
        down_bytes = self._rng.randint(0, 2_000_000_000)
        up_bytes = down_bytes // self._rng.randint(8, 20)
        self.down_bits, self.up_bits = down_bytes * 8, up_bytes * 8
        self.down_packets = down_bytes // _DOWN_PACKET_BYTES
        self.up_packets = up_bytes // _UP_PACKET_BYTES

    def advance(self, sec: int) -> None:
        gap = sec - self.sec
        if gap <= 0:
            return
        if gap > _CATCH_UP_LIMIT:
            skipped = gap - 3
            self._accumulate(skipped)
            self.sec += skipped
        while self.sec < sec:
            self._step()

    def counters(self, ms: int) -> tuple[int, int, int, int]:
        """(up bits, down bits, up packets, down packets) carried up to time ``ms``."""
        sec, f = divmod(ms, 1000)
        self.advance(sec)
        if sec < self.sec:  # a time before this second was stepped: its start
            f = 0
        return (
            self.up_bits + self.up_bps * f // 1000,
            self.down_bits + self.down_bps * f // 1000,
            self.up_packets + self.up_pps * f // 1000,
            self.down_packets + self.down_pps * f // 1000,
        )

    def rates(self, ms: int) -> tuple[int, int, int, int]:
        """(up bit/s, down bit/s, up packet/s, down packet/s) over the second before ``ms``:
        what `counters` grew by from ms - 1000 to ms, within rounding."""
        sec, f = divmod(ms, 1000)
        self.advance(sec)
        if sec < self.sec:
            f = 0
        g = 1000 - f
        p = self._prev
        return (
            (p[0] * g + self.up_bps * f) // 1000,
            (p[1] * g + self.down_bps * f) // 1000,
            (p[2] * g + self.up_pps * f) // 1000,
            (p[3] * g + self.down_pps * f) // 1000,
        )

    def saturate(self, fraction: float | None, until_sec: int | None) -> None:
        """From the next simulated second on, download runs at ``fraction`` of the plan
        (upload carries the acknowledgements) until second ``until_sec``; None ends it.

        It starts with the next second, never inside the current one: the counters of a
        second are its rate's integral, so changing the rate mid-second would rewrite
        counts already read (and could make them go backwards).
        """
        self._sat = fraction
        self._sat_until = until_sec

    @property
    def saturated(self) -> bool:
        return self._sat is not None

    def _accumulate(self, seconds: int) -> None:
        self.down_bits += self.down_bps * seconds
        self.up_bits += self.up_bps * seconds
        self.down_packets += self.down_pps * seconds
        self.up_packets += self.up_pps * seconds
        self._prev = (self.up_bps, self.down_bps, self.up_pps, self.down_pps)

    def _step(self) -> None:
        self._accumulate(1)
        self.sec += 1
        self._left -= 1
        if self._left <= 0:
            rng = self._rng
            self._state = rng.choices(_NEXT_STATES, _NEXT_WEIGHTS)[0]
            self._left = rng.randint(*_DURATION[self._state])
            self._level = rng.uniform(0.25, 0.6)
        self._rates()

    def _rates(self) -> None:
        rng = self._rng
        cap, upcap, state = self.down_cap, self.up_cap, self._state
        drops = 0
        if state == _IDLE:
            down = rng.randint(0, 48_000)
            up = int(down * rng.uniform(0.1, 0.6))
        elif state == _BROWSE:
            if rng.random() < 0.35:
                down = int(cap * rng.uniform(0.2, 0.9))
            else:
                down = int(cap * rng.uniform(0.005, 0.06))
            up = int(down * rng.uniform(0.03, 0.12))
        elif state == _STREAM:
            down = int(min(0.97, self._level * rng.uniform(0.85, 1.15)) * cap)
            up = int(down * rng.uniform(0.02, 0.05))
        elif state == _BULK:
            down = int(cap * rng.uniform(0.85, 0.98))
            up = int(down * rng.uniform(0.02, 0.04))
            if rng.random() < 0.3:
                drops = rng.randint(1, 6)
        else:  # _UPLOAD: video call or cloud backup, the occasional rx > tx
            up = int(upcap * rng.uniform(0.5, 0.95))
            down = int(up * rng.uniform(0.1, 0.8))
        if self._sat is not None and self._sat_until is not None and self.sec >= self._sat_until:
            self._sat = self._sat_until = None
        if self._sat is not None:
            # The state machine above still draws its numbers, so traffic after the
            # saturation is what it would have been without it. The wobble is the second's.
            down = int(cap * self._sat * (0.97 + 0.03 * ((self.sec * 7919) % 101) / 100))
            up = int(down * 0.03)
            drops = 0
        up = min(up, upcap)
        self.down_bps = down
        self.up_bps = up
        self.down_pps = (down + 8 * _DOWN_PACKET_BYTES - 1) // (8 * _DOWN_PACKET_BYTES)
        # Downloads are acknowledged, so upload packets never fall far below half the download's.
        self.up_pps = max((up + 8 * _UP_PACKET_BYTES - 1) // (8 * _UP_PACKET_BYTES), self.down_pps // 2)
        self.queue_drops = drops
