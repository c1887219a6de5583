"""Waiting for a condition: poll with a deadline, never sleep-and-hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], timeout: float = 5.0, what: str = "condition", *, step: float = 0.02
) -> T:
    """Poll `condition` until it returns something truthy and return that; fail naming
    `what` once `timeout` seconds have passed. A condition answering `X | None` ("not
    yet") thus waits for an `X`: the result is never None."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(step)
