"""Failed token attempts, counted per client address: a guesser is slowed to a crawl.

Every place that compares a token counts a wrong one here: `POST /api/session`, an
`Authorization: Bearer` header on any route, and a WebSocket handshake's `bearer.*`
subprotocol (each handshake counts once). After AUTH_MAX_FAILURES wrong tokens within
AUTH_FAILURE_WINDOW seconds, that address's token attempts are answered 429 with
Retry-After, right or wrong, until the oldest failure leaves the window; attempts made
while blocked are not counted, so the operator who mistyped is back within one window.
Session cookies are signed, not guessed, and are not counted or blocked.

The count is per web process and in memory (a restart forgets it); the client address
is uvicorn's, which honours X-Forwarded-For only from FORWARDED_ALLOW_IPS.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Addresses remembered at most: a spray from many addresses cannot grow memory without
# bound (the least recently failed are forgotten first).
MAX_ADDRESSES = 10_000


class AuthThrottle:
    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try a token again, or None when it may now."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        now = self.clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str) -> None:
        """Record one wrong token from `address`."""
        failures = self._failures.pop(address, None) or deque()
        failures.append(self.clock())
        while len(failures) > self.max_failures:
            failures.popleft()
        self._failures[address] = failures
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)
