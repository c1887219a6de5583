"""A client-side deadline for every PostgreSQL round trip (psycopg2).

The server's statement_timeout only helps when the server sees the statement and is
alive to cancel it. When PostgreSQL is stalled (a frozen host, a network path that
black-holes packets, a proxy that stops forwarding) the kernel keeps acknowledging
what the client sends and libpq waits for an answer forever: a worker thread, a stop
request or a reconciler pass hangs with it.

psycopg2 lets a "wait callback" do the waiting for every connection of the process
(its green mode): libpq is driven asynchronously and the callback polls the socket.
This callback polls with a deadline taken from the connection's class (see
`timed_connection`), so each connect, statement or fetch gives up after that many
seconds with an OperationalError. psycopg2 closes a connection whose wait failed, so
SQLAlchemy sees a closed connection and drops it from its pool (a disconnect).
Connections of any other class (a migration with no statement timeout, a test's own
engine) wait without a deadline, as before.
"""

from __future__ import annotations

import functools
import select
import threading
import time
from typing import Any

import psycopg2
from psycopg2 import extensions

_installed = threading.Lock()
_done = False


class TimedConnection(extensions.connection):  # type: ignore[misc]  # psycopg2 is untyped
    """A psycopg2 connection whose round trips give up after `client_timeout` seconds
    (`connect_timeout` while it is still logging in)."""

    client_timeout: float | None = None
    connect_timeout: float | None = None


@functools.cache
def timed_connection(timeout: float, connect_timeout: float) -> type[TimedConnection]:
    """The connection class (psycopg2 `connection_factory`) for these deadlines (s)."""
    if timeout <= 0 or connect_timeout <= 0:
        raise ValueError(f"timeouts must be positive, got {timeout!r} and {connect_timeout!r}")
    return type(
        f"TimedConnection{timeout:g}s",
        (TimedConnection,),
        {"client_timeout": float(timeout), "connect_timeout": float(connect_timeout)},
    )


def install() -> None:
    """Make the deadline-aware wait callback the process's (once; idempotent)."""
    global _done
    with _installed:
        if not _done:
            extensions.set_wait_callback(wait_with_deadline)
            _done = True


def wait_with_deadline(conn: Any) -> None:
    """psycopg2's wait callback: drive `conn` until its operation completes, or time out."""
    timeout = getattr(conn, "client_timeout", None)
    if timeout is not None and conn.status == extensions.STATUS_SETUP:
        timeout = getattr(conn, "connect_timeout", None) or timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    fd = conn.fileno()
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        if state == extensions.POLL_READ:
            events = select.POLLIN
        elif state == extensions.POLL_WRITE:
            events = select.POLLOUT
        else:
            raise psycopg2.OperationalError(f"unexpected state from poll(): {state}")
        if fd != conn.fileno():  # libpq may switch sockets while connecting
            poller.unregister(fd)
            fd = conn.fileno()
        poller.register(fd, events)
        while True:
            if deadline is None:
                ready = poller.poll()
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise psycopg2.OperationalError(
                        f"timeout expired: PostgreSQL did not answer within {timeout:g}s "
                        "(client-side deadline); the connection was closed"
                    )
                ready = poller.poll(max(1, int(left * 1000)))
            if ready:
                break
