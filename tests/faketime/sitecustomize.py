"""Loaded (via PYTHONPATH) only by test processes that run under libfaketime.

libfaketime 0.9.10 (Debian 12) mis-converts clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME) when it leaves the monotonic clock alone (FAKETIME_DONT_FAKE_MONOTONIC=1),
so CPython's time.sleep fails with EINVAL. Faking the monotonic clock instead breaks
every timed lock wait (sem_clockwait is not intercepted). So the monotonic clock stays
real and time.sleep waits through select(), whose relative timeout libfaketime leaves
alone. Only the wall clock of the process is moved, which is the point of the test.
"""

from __future__ import annotations

import math
import operator
import select
import time
from typing import SupportsIndex


def _sleep(secs: float | SupportsIndex) -> None:
    seconds = float(secs) if isinstance(secs, float) else float(operator.index(secs))
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        select.select([], [], [], left)


time.sleep = _sleep
