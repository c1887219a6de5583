"""Every Redis client of the service is built here, from settings.

Plain Redis (REDIS_URL, or REDIS_ADDR/REDIS_PASS/REDIS_DB) or, when REDIS_SENTINELS is
set, the master that the sentinels name for REDIS_SENTINEL_MASTER (REDIS_PASS and
REDIS_DB apply to that master; REDIS_SENTINEL_PASSWORD to the sentinels themselves).
Through Sentinel, every new connection asks the sentinels where the master is, and a
connection that meets a demoted master (READONLY) is dropped: after a failover the
clients reconnect to the promoted replica by themselves (docs/architecture.md, Redis
failover). Callers keep choosing their own timeouts, retries and pool sizes; only the
way to the server is decided here.

Celery reaches the same servers through kombu's `sentinel://` transport (`celery_broker`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.retry import Retry

from settings import Settings, get_settings


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """A Sentinel-managed pool that waits for a free connection (as BlockingConnectionPool)
    instead of failing with MaxConnectionsError: a thousand monitor threads share it."""


class _AsyncBlockingSentinelPool(aiosentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The asyncio twin of `_BlockingSentinelPool` (the web process's pool)."""


@dataclass(frozen=True)
class ClientOptions:
    """What a caller decides about its connections: timeouts, retries, pool size and,
    with `blocking`, a pool that waits `pool_timeout` seconds for a free connection."""

    socket_timeout: float
    socket_connect_timeout: float
    retry: Retry | None = None
    max_connections: int | None = None
    health_check_interval: int = 0
    blocking: bool = False
    pool_timeout: float = 20.0

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "health_check_interval": self.health_check_interval,
        }
        if self.retry is not None:
            out["retry"] = self.retry
        if self.max_connections is not None:
            out["max_connections"] = self.max_connections
        if self.blocking:
            out["timeout"] = self.pool_timeout
        return out


def uses_sentinel(settings: Settings | None = None) -> bool:
    """Is Redis reached through Sentinel (REDIS_SENTINELS set)?"""
    return bool((settings or get_settings()).redis_sentinels)


def target(settings: Settings | None = None) -> str:
    """Where the clients go, as a string without any password: the process-wide objects
    (tasks.runtime) are rebuilt when it changes (tests point a process elsewhere)."""
    settings = settings or get_settings()
    if settings.redis_sentinels:
        where = ",".join(f"{h}:{p}" for h, p in settings.redis_sentinels)
        return f"sentinel://{where}/{settings.redis_sentinel_master}/{settings.redis_db}"
    return settings.redis_url


def _sentinel_kwargs(settings: Settings, options: ClientOptions) -> dict[str, Any]:
    # The sentinels are asked on every new connection: same bounds as the connection.
    out: dict[str, Any] = {
        "socket_timeout": options.socket_connect_timeout,
        "socket_connect_timeout": options.socket_connect_timeout,
    }
    if settings.redis_sentinel_password:
        out["password"] = settings.redis_sentinel_password.get()
    return out


def _master_kwargs(settings: Settings, options: ClientOptions) -> dict[str, Any]:
    out = options.kwargs()
    out["db"] = settings.redis_db
    if settings.redis_pass:
        out["password"] = settings.redis_pass.get()
    return out


def sync_client(options: ClientOptions, settings: Settings | None = None) -> redis.Redis:
    """A synchronous client (its own pool) to the configured Redis or Sentinel master."""
    settings = settings or get_settings()
    if not settings.redis_sentinels:
        if options.blocking:
            kwargs = options.kwargs()
            pool = redis.BlockingConnectionPool.from_url(settings.redis_url, **kwargs)
            return redis.Redis.from_pool(pool)
        return redis.Redis.from_url(settings.redis_url, **options.kwargs())
    manager = redis.sentinel.Sentinel(
        list(settings.redis_sentinels), sentinel_kwargs=_sentinel_kwargs(settings, options)
    )
    pool_class = _BlockingSentinelPool if options.blocking else redis.sentinel.SentinelConnectionPool
    client: redis.Redis = manager.master_for(
        settings.redis_sentinel_master,
        connection_pool_class=pool_class,
        **_master_kwargs(settings, options),
    )
    return client


def async_client(options: ClientOptions, settings: Settings | None = None) -> aioredis.Redis:
    """An asyncio client (its own pool) to the configured Redis or Sentinel master."""
    settings = settings or get_settings()
    if not settings.redis_sentinels:
        if options.blocking:
            pool = aioredis.BlockingConnectionPool.from_url(settings.redis_url, **options.kwargs())
            return aioredis.Redis.from_pool(pool)
        return aioredis.Redis.from_url(settings.redis_url, **options.kwargs())
    manager = aiosentinel.Sentinel(
        list(settings.redis_sentinels), sentinel_kwargs=_sentinel_kwargs(settings, options)
    )
    pool_class = _AsyncBlockingSentinelPool if options.blocking else aiosentinel.SentinelConnectionPool
    aclient: aioredis.Redis = manager.master_for(
        settings.redis_sentinel_master,
        connection_pool_class=pool_class,
        **_master_kwargs(settings, options),
    )
    return aclient


def celery_broker(settings: Settings | None = None) -> tuple[str, dict[str, Any]]:
    """Celery's broker (and result backend) URL and the transport options it needs
    besides the caller's: kombu's `sentinel://h1:p1;sentinel://h2:p2/<db>` with
    `master_name` (and the sentinels' password in `sentinel_kwargs`), or the plain URL."""
    settings = settings or get_settings()
    if not settings.redis_sentinels:
        return settings.redis_url, {}
    auth = f":{quote(settings.redis_pass.get(), safe='')}@" if settings.redis_pass else ""
    url = ";".join(f"sentinel://{auth}{h}:{p}/{settings.redis_db}" for h, p in settings.redis_sentinels)
    options: dict[str, Any] = {"master_name": settings.redis_sentinel_master}
    if settings.redis_sentinel_password:
        options["sentinel_kwargs"] = {"password": settings.redis_sentinel_password.get()}
    return url, options
