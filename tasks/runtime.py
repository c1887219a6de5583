"""The engine's process-wide objects, built once per process from settings.

`current()` gives the Runtime: one Redis pool and the semaphore and publisher on it,
plus, in a monitors worker, the lease keeper and the batch publisher (each a thread
with a connection of its own, started on first use) and the writer of the monitors'
session rows (tasks.state_writer). Importing tasks costs nothing; a Runtime is
rebuilt when the Redis target (URL, or sentinels and master) changes (tests point the
process at their own database).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from celery.worker import state as worker_state

from common import redis_clients
from settings import get_settings
from tasks.leases import LeaseKeeper
from tasks.publisher import BatchPublisher, Publisher
from tasks.semaphore import Semaphore
from tasks.state_writer import StateWriter

# Monitors only issue short commands, but a thousand threads can issue them at
# once: wait for a free connection instead of failing with MaxConnectionsError.
REDIS_MAX_CONNECTIONS = 256
REDIS_POOL_TIMEOUT = 10.0


def _revoked_task_ids() -> set[str]:
    # Celery's in-process revoked set (a LimitedSet, which answers `in`).
    return worker_state.revoked  # type: ignore[no-any-return]  # celery is untyped


@dataclass(eq=False)
class Runtime:
    url: str
    redis: redis.Redis
    semaphore: Semaphore
    publisher: Publisher
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _keeper: LeaseKeeper | None = field(default=None, repr=False)
    _batch: BatchPublisher | None = field(default=None, repr=False)
    _writer: StateWriter | None = field(default=None, repr=False)

    @classmethod
    def build(cls, url: str) -> Runtime:
        """`url`: where the clients go (common.redis_clients.target), for the cache only:
        the clients are built from settings (plain Redis or Sentinel)."""
        client = redis_clients.sync_client(
            redis_clients.ClientOptions(
                socket_timeout=5,
                socket_connect_timeout=5,
                max_connections=REDIS_MAX_CONNECTIONS,
                health_check_interval=30,
                blocking=True,
                pool_timeout=REDIS_POOL_TIMEOUT,
            )
        )
        return cls(url, client, Semaphore.from_settings(client), Publisher.from_settings(client))

    def keeper(self) -> LeaseKeeper:
        """The process's lease keeper (renewals, stop keys, revokes), started on first use."""
        with self._lock:
            if self._keeper is None:
                self._keeper = LeaseKeeper.from_settings(self.semaphore, revoked=_revoked_task_ids)
                self._keeper.start()
            return self._keeper

    def existing_keeper(self) -> LeaseKeeper | None:
        """The keeper if this process runs monitors, without starting one (metrics)."""
        with self._lock:
            return self._keeper

    def batch_publisher(self) -> BatchPublisher:
        """The process's batching publisher (every monitor's fenced publishes)."""
        with self._lock:
            if self._batch is None:
                self._batch = BatchPublisher.from_settings(self.publisher)
                self._batch.start()
            return self._batch

    def state_writer(self) -> StateWriter:
        """The process's writer of the monitors' session rows (off their loops)."""
        with self._lock:
            if self._writer is None:
                self._writer = StateWriter()
            return self._writer

    def existing_state_writer(self) -> StateWriter | None:
        """The writer if this process made one, without making one (metrics)."""
        with self._lock:
            return self._writer

    def stop_all(self, reason: str) -> None:
        """Every monitor of this process gets its stop event (worker shutdown)."""
        with self._lock:
            keeper = self._keeper
        if keeper is not None:
            keeper.stop_all(reason)

    def close(self) -> None:
        """Stop the keeper and batch threads and close every connection."""
        with self._lock:
            keeper, self._keeper = self._keeper, None
            batch, self._batch = self._batch, None
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()
        if keeper is not None:
            keeper.close()
        if batch is not None:
            batch.close()
        self.redis.close()


_lock = threading.Lock()
_current: Runtime | None = None


def current() -> Runtime:
    """This process's Runtime for the configured Redis URL."""
    global _current
    url = redis_clients.target(get_settings())
    with _lock:
        if _current is None or _current.url != url:
            if _current is not None:
                _current.close()
            _current = Runtime.build(url)
        return _current


def close() -> None:
    """Close this process's Runtime, if one was built (worker shutdown, test teardown)."""
    global _current
    with _lock:
        runtime, _current = _current, None
    if runtime is not None:
        runtime.close()


def existing() -> Runtime | None:
    """The Runtime if one was built, without building one (signal handlers)."""
    with _lock:
        return _current
