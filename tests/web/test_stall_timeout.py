"""web.ws.StallTimeout, the deadline of a /ws batch: each step (frame) gets the timeout
from the step before it, however long the whole run takes."""

from __future__ import annotations

import asyncio

import pytest

from web.ws import StallTimeout

pytestmark = pytest.mark.anyio


async def test_stall_timeout_expires_when_the_first_step_stalls() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with StallTimeout(0.1):
            await asyncio.sleep(10)
    assert 0.1 <= loop.time() - start < 5


async def test_stall_timeout_lets_a_run_of_quick_steps_outlast_it() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with StallTimeout(0.3) as deadline:
        for _ in range(10):
            await asyncio.sleep(0.05)
            deadline.progress()
    assert loop.time() - start > 0.3  # longer than the timeout, never a stall of it


async def test_stall_timeout_expires_on_a_stall_after_progress() -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        async with StallTimeout(0.3) as deadline:
            for _ in range(10):
                await asyncio.sleep(0.05)
                deadline.progress()
            stalled = loop.time()
            await asyncio.sleep(10)
    # the stall's own timeout, counted from the last step, not from the start
    assert 0.3 <= loop.time() - stalled < 5
