"""Retry delays for router and interface trouble."""

from __future__ import annotations

import random

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 15.0


class Backoff:
    """Exponential, capped, with jitter (half to full delay), so retries never spin
    and a thousand monitors of one dead router do not retry in lockstep."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        # The exponent stops growing once past the cap: a router down for days must
        # not overflow the float conversion.
        ceiling = min(self.maximum, self.initial * (2 ** min(self.failures, 40)))
        self.failures += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
