"""What the lifespan opens for requests, and the one way to run blocking code.

The service functions (tasks.service) and every database query are synchronous:
they run in worker threads through `AppState.run`, bounded by one limiter so a
burst of requests cannot exhaust the database pool or the process's threads,
and never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
import redis.asyncio as aioredis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from common import redis_clients
from models.db import session_factory, shared_engine
from settings import Settings
from web.metrics import WebMetrics
from web.relay import Relay
from web.throttle import AuthThrottle

P = ParamSpec("P")
T = TypeVar("T")

STATE_KEY = "web"

# Threads for blocking calls (service functions, database queries). Few, on purpose:
# they hold the GIL between their I/O waits, and the event loop thread (the relay,
# every WebSocket) waits its turn behind each runnable one (5 ms switch interval). With
# 40 of them, 50 concurrent starts stalled /ws delivery for most of a second (make
# bench, storm); 8 keep it to a few switch intervals and still overlap the I/O. Each
# holds at most one database connection of the process's engine.
THREADS = 8

# Bounded, so a Redis that stops answering is a 503 within seconds, never a hang.
REDIS_SOCKET_TIMEOUT = 5.0
REDIS_CONNECT_TIMEOUT = 3.0
REDIS_MAX_CONNECTIONS = 64


# The relay's reader blocks in XREAD for RELAY_BLOCK_MS; its own connection's socket
# timeout must be longer, or every quiet second would look like a dead Redis.
RELAY_BLOCK_MS = 1000
RELAY_SOCKET_TIMEOUT = 10.0


@dataclass
class AppState:
    settings: Settings
    redis: aioredis.Redis
    engine: Engine
    db: sessionmaker[Session]
    limiter: anyio.CapacityLimiter
    relay: Relay
    metrics: WebMetrics
    throttle: AuthThrottle
    # Open /ws connections of this process, against WS_MAX_CONNECTIONS.
    ws_open: int = 0

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking call in a worker thread (bounded by the limiter)."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.limiter)


@asynccontextmanager
async def open_state(
    settings: Settings, metrics: WebMetrics, throttle: AuthThrottle
) -> AsyncIterator[AppState]:
    # Plain Redis or the Sentinel master (common/redis_clients.py), as every process.
    client = redis_clients.async_client(
        redis_clients.ClientOptions(
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            max_connections=REDIS_MAX_CONNECTIONS,
            health_check_interval=30,
            blocking=True,
            pool_timeout=REDIS_SOCKET_TIMEOUT,
        ),
        settings,
    )
    # The process's one engine (bounded connects, statements and pool waits: models/db.py),
    # which the service functions these routes call use too (tasks.sessions).
    engine = shared_engine(settings)
    relay_client = redis_clients.async_client(
        redis_clients.ClientOptions(
            socket_timeout=RELAY_SOCKET_TIMEOUT, socket_connect_timeout=REDIS_CONNECT_TIMEOUT
        ),
        settings,
    )
    relay = Relay(
        relay_client,
        block_ms=RELAY_BLOCK_MS,
        max_pending=settings.ws_max_pending,
        observe_lag=metrics.relay_lag.observe,
    )
    metrics.watch(relay, settings)
    reader = asyncio.create_task(relay.run(), name="stream-relay")
    try:
        yield AppState(
            settings=settings,
            redis=client,
            engine=engine,
            db=session_factory(engine),
            limiter=anyio.CapacityLimiter(THREADS),
            relay=relay,
            metrics=metrics,
            throttle=throttle,
        )
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await relay_client.aclose()
        await client.aclose()  # and its pool (the client was made from it)
        engine.dispose()


def app_state(conn: HTTPConnection) -> AppState:
    """The lifespan's state from a request (or, later, a WebSocket)."""
    state = getattr(conn.state, STATE_KEY)
    assert isinstance(state, AppState)
    return state
