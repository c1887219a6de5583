"""Retry delays: exponential, capped, jittered; one class for the client and the engine."""

from __future__ import annotations

import math
import random

__all__ = ["Backoff"]


class Backoff:
    """Delays before successive retries of one failing thing (a router, a login...).

    The n-th delay (n = 0, 1, ...) is drawn from [ceiling/2, ceiling] with
    ceiling = min(maximum, initial * 2**n): never zero, so a retry loop never spins,
    and spread out, so a thousand monitors of one dead router do not retry in lockstep.
    With ``first_immediate`` the first delay is drawn from [0, initial/2] instead: a
    link that just dropped is usually back at once (the router closed one session),
    so the first retry should not wait; the ladder then goes on from 2 * initial.
    ``reset()`` after a success starts the ladder over.
    """

    def __init__(self, initial: float = 0.5, maximum: float = 15.0, *, first_immediate: bool = False) -> None:
        if initial <= 0:
            raise ValueError(f"initial must be > 0, got {initial!r}")
        if maximum < initial:
            raise ValueError(f"maximum ({maximum!r}) must be >= initial ({initial!r})")
        self.initial = initial
        self.maximum = maximum
        self.first_immediate = first_immediate
        self.failures = 0
        # Past this exponent the ceiling is the cap anyway; bounding it keeps
        # initial * 2**n from overflowing a float when a router is down for days.
        self._max_exponent = max(0, math.ceil(math.log2(maximum) - math.log2(initial)))

    def __repr__(self) -> str:
        return (
            f"Backoff(initial={self.initial!r}, maximum={self.maximum!r}, "
            f"first_immediate={self.first_immediate!r}, failures={self.failures})"
        )

    def next_delay(self) -> float:
        """The delay before the next retry, in seconds; counts one more failure."""
        n = self.failures
        self.failures += 1
        if n == 0 and self.first_immediate:
            return random.uniform(0, self.initial / 2)
        ceiling = min(self.maximum, math.ldexp(self.initial, min(n, self._max_exponent)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """A success: the next delay is the first one again."""
        self.failures = 0
