"""Process-wide engine objects: one Redis pool, semaphore, publisher, batch publisher
(monitors' fenced publishes, one thread and connection of its own) and lease keeper.

Built lazily from settings so importing tasks costs nothing, and rebuilt if the
Redis URL changes (tests point the process at their own database).
"""

from __future__ import annotations

import threading

import redis

from settings import get_settings
from tasks.leases import LeaseKeeper
from tasks.publisher import BatchPublisher, Publisher
from tasks.semaphore import Semaphore

# Monitors only issue short commands, but a thousand threads can issue them at
# once: wait for a free connection instead of failing with MaxConnectionsError.
REDIS_MAX_CONNECTIONS = 256
REDIS_POOL_TIMEOUT = 10.0

_lock = threading.Lock()
_state: dict[str, object] = {}


def _build(url: str) -> None:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_TIMEOUT,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    client = redis.Redis(connection_pool=pool)
    semaphore = Semaphore(client)
    _state.clear()
    _state.update(url=url, redis=client, semaphore=semaphore, publisher=Publisher.from_settings(client))


def _get(name: str) -> object:
    url = get_settings().redis_url
    with _lock:
        if _state.get("url") != url:
            old_keeper = _state.get("keeper")
            if isinstance(old_keeper, LeaseKeeper):
                old_keeper.close()
            old_batch = _state.get("batch_publisher")
            if isinstance(old_batch, BatchPublisher):
                old_batch.close()
            _build(url)
        return _state[name]


def redis_client() -> redis.Redis:
    return _get("redis")  # type: ignore[return-value]


def semaphore() -> Semaphore:
    return _get("semaphore")  # type: ignore[return-value]


def publisher() -> Publisher:
    return _get("publisher")  # type: ignore[return-value]


def batch_publisher() -> BatchPublisher:
    """The worker process's batching publisher (fenced publishes of every monitor)."""
    plain = publisher()
    with _lock:
        current = _state.get("batch_publisher")
        if not isinstance(current, BatchPublisher):
            current = BatchPublisher.from_settings(plain)
            current.start()
            _state["batch_publisher"] = current
        return current


def existing_batch_publisher() -> BatchPublisher | None:
    with _lock:
        current = _state.get("batch_publisher")
        return current if isinstance(current, BatchPublisher) else None


def keeper() -> LeaseKeeper:
    """The worker process's lease keeper, started on first use."""
    sem = semaphore()
    with _lock:
        current = _state.get("keeper")
        if not isinstance(current, LeaseKeeper):
            current = LeaseKeeper.from_settings(sem)
            current.start()
            _state["keeper"] = current
        return current


def existing_keeper() -> LeaseKeeper | None:
    with _lock:
        current = _state.get("keeper")
        return current if isinstance(current, LeaseKeeper) else None
