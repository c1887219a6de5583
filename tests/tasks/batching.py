"""A batch publisher a test can hold: what is published meanwhile queues behind it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from harness.polling import wait_for
from tasks.publisher import BatchPublisher, _Item


class GatedBatchPublisher(BatchPublisher):
    """Holds its FIRST batch until `gate` is set, so everything published meanwhile is
    queued and goes out together in the next batch; records each batch's size."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.held = threading.Event()
        self.sizes: list[int] = []

    def _execute(self, items: list[_Item]) -> list[object]:
        if not self.held.is_set():
            self.held.set()
            self.gate.wait(10)
        self.sizes.append(len(items))
        return super()._execute(items)

    def queue_behind_held(
        self, calls: Sequence[Callable[..., object]]
    ) -> tuple[threading.Thread, list[object]]:
        """Run `calls` in threads (in_threads) until every one is queued behind the held
        batch: the runner, and its results once it is joined (after `gate` is set)."""
        results: list[object] = []
        runner = threading.Thread(target=lambda: results.extend(in_threads(calls)))
        runner.start()
        wait_for(lambda: self._queue.qsize() == len(calls), what="every call to be queued")
        return runner, results


def in_threads(calls: Sequence[Callable[..., object]], timeout: float = 20.0) -> list[object]:
    """Run each zero-argument call in its own thread; its result or exception, in order."""
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # returned for the test to inspect
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a caller never got its result"
    return results
