"""Process-wide router hub: monitors share a few API connections per router.

Invariant 3 (docs/architecture.md, Invariants): whatever the number of monitors in a worker process,
it holds at most `settings.router_connections_per_process` RouterClient
connections per router. Every monitor checks out a handle bound to one of those
connection slots (the least used) and issues its own tagged command on it; the
RouterClient multiplexes and re-issues streams after a reconnect.

Connecting is lazy, one login per connection slot at a time (so two monitors
cannot race into opening two connections), in a background thread that callers
wait on with their own deadline (so a monitor's stop checks keep running while a
router takes its connect timeout to answer).

A failed login (refused, unreachable, max-sessions full) is remembered and replayed
to every caller until the connection slot's next attempt, which backs off
exponentially with jitter up to CONNECT_BACKOFF_MAX: the router sees one login
attempt per step whatever the number of monitors, and monitors ask `retry_in()` to
sleep until that step instead of each keeping a ladder of its own. The device
layer's RouterClient gives up for good when a re-login is refused; its monitors
then `invalidate()` it and the next use dials again through this same backoff.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.backoff import Backoff
from routeros import RouterClient, RouterEndpoint, RouterError, Stream
from settings import get_settings

ClientFactory = Callable[[RouterEndpoint], RouterClient]

# Delays between login attempts to a router that refuses them: the first drawn from
# [0.5, 1] s, doubling up to [15, 30] s, so a router rebooting or full of other
# tools' sessions sees about two attempts a minute once it has been away for a
# minute, and monitors resume within 30 s of it taking logins again.
CONNECT_BACKOFF_INITIAL = 1.0
CONNECT_BACKOFF_MAX = 30.0


def _router_key(endpoint: RouterEndpoint) -> tuple[Any, ...]:
    # The password is part of the identity (a changed password needs a new login)
    # but the key lives only in memory and is never rendered.
    return (
        endpoint.host,
        endpoint.port,
        endpoint.username,
        endpoint.password,
        endpoint.tls,
        endpoint.tls_mode,
        endpoint.cafile,
        endpoint.encoding,
    )


def _connect_backoff() -> Backoff:
    return Backoff(CONNECT_BACKOFF_INITIAL, CONNECT_BACKOFF_MAX)


@dataclass
class _Slot:
    client: RouterClient | None = None
    users: int = 0
    error: RouterError | None = None
    # While `error` is set: no new login before this moment (monotonic), shared by
    # every monitor of the router in this process.
    retry_at: float = 0.0
    backoff: Backoff = field(default_factory=_connect_backoff)
    # A login runs in its own thread so that no monitor blocks on it for longer
    # than it wants to (its stop checks must keep running); `attempt_done` is
    # set when that login ends either way.
    connecting: bool = False
    attempt_done: threading.Event = field(default_factory=threading.Event)


# Compared by identity: one per router per hub, and a key for what a router's monitors
# share beyond its connections (tasks/queue_poll.py).
@dataclass(eq=False)
class _Router:
    label: str
    slots: list[_Slot]
    state: threading.Lock = field(default_factory=threading.Lock)


class RouterHandle:
    """One monitor's share of a router connection; close() when the monitor ends."""

    def __init__(self, hub: RouterHub, router: _Router, slot: _Slot, endpoint: RouterEndpoint):
        self._hub = hub
        self._router = router
        self._slot = slot
        self._endpoint = endpoint
        self._closed = False
        self._client: RouterClient | None = None  # the one this handle last used

    @property
    def router(self) -> Hashable:
        """The same object for every handle of this router on this hub: a key for what
        the router's monitors in this process share (tasks/queue_poll.py)."""
        return self._router

    @property
    def label(self) -> str:
        return self._router.label

    def share(self) -> RouterHandle:
        """Another handle on this handle's connection (already logged in, when this one
        is), for a helper that serves this handle's monitor and others and may outlive
        it; close() it like any handle."""
        with self._router.state:
            self._slot.users += 1
        return RouterHandle(self._hub, self._router, self._slot, self._endpoint)

    def client(self, wait: float | None = None) -> RouterClient | None:
        """The shared, connected client; starts the login on first use.

        Waits at most `wait` seconds (None = until the login ends) and returns None
        if the login is still running; raises the RouterError of a failed login.
        """
        client = self._hub._connected(self._router, self._slot, self._endpoint, wait)
        if client is not None:
            self._client = client
        return client

    def stream(
        self,
        command: str,
        attrs: Mapping[str, str] | None = None,
        *,
        proplist: Sequence[str] | None = None,
        maxsize: int = 64,
        wait: float | None = None,
    ) -> Stream | None:
        """A tagged stream on the shared connection, or None while still connecting."""
        client = self.client(wait)
        if client is None:
            return None
        return client.stream(command, attrs, proplist=proplist, maxsize=maxsize)

    def call(
        self,
        command: str,
        attrs: Mapping[str, str] | None = None,
        *,
        queries: Sequence[str] = (),
        proplist: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> list[dict[str, str]] | None:
        """One-shot command (waits up to `timeout` for a login too); None if not connected yet."""
        client = self.client(timeout)
        if client is None:
            return None
        return client.call(command, attrs, queries=queries, proplist=proplist, timeout=timeout)

    def retry_in(self) -> float:
        """Seconds until this connection slot tries to log in again after a failed
        login (0 when it would try now, or has not failed)."""
        return self._hub._retry_in(self._router, self._slot)

    def last_error(self) -> str:
        """What went wrong last on this router's connection (the failed login, or the
        reconnect the client is retrying), in the device layer's words; "" if nothing."""
        return self._hub._last_error(self._router, self._slot)

    def invalidate(self) -> None:
        """The client this handle used failed for good (closed, re-login refused): drop
        it so the next use logs in again. A newer client someone else already put in
        its place is left alone."""
        if self._client is not None:
            self._hub._invalidate(self._router, self._slot, self._client)
            self._client = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub._release(self._router, self._slot)


class RouterHub:
    """At most `connections_per_router` clients per router, shared by every monitor."""

    def __init__(self, connections_per_router: int = 1, client_factory: ClientFactory | None = None) -> None:
        if connections_per_router < 1:
            raise ValueError("connections_per_router must be at least 1")
        self._per_router = connections_per_router
        # Probe an idle link after `timeout` seconds (capped at 10 s): a stalled
        # connection is then noticed within about twice the router timeout.
        self._factory = client_factory or (
            lambda endpoint: RouterClient(endpoint, keepalive=min(10.0, endpoint.timeout))
        )
        self._routers: dict[tuple[Any, ...], _Router] = {}
        self._lock = threading.Lock()

    def checkout(self, endpoint: RouterEndpoint) -> RouterHandle:
        key = _router_key(endpoint)
        with self._lock:
            router = self._routers.get(key)
            if router is None:
                label = endpoint.name or f"{endpoint.host}:{endpoint.port}"
                router = _Router(label, [_Slot() for _ in range(self._per_router)])
                self._routers[key] = router
        with router.state:
            # Least used slot; ties go to one that is already connected.
            slot = min(router.slots, key=lambda s: (s.users, s.client is None))
            slot.users += 1
        return RouterHandle(self, router, slot, endpoint)

    def _connected(
        self, router: _Router, slot: _Slot, endpoint: RouterEndpoint, wait: float | None
    ) -> RouterClient | None:
        with router.state:
            if slot.client is not None:
                return slot.client
            if not slot.connecting:
                if slot.error is not None and time.monotonic() < slot.retry_at:
                    raise copy.copy(slot.error)
                slot.connecting, slot.error = True, None
                slot.attempt_done = threading.Event()
                threading.Thread(
                    target=self._login,
                    args=(router, slot, endpoint),
                    name=f"hub-login-{router.label}",
                    daemon=True,
                ).start()
            done = slot.attempt_done
        done.wait(wait)
        with router.state:
            if slot.client is not None:
                return slot.client
            if done.is_set() and slot.error is not None:
                raise copy.copy(slot.error)
            return None

    def _login(self, router: _Router, slot: _Slot, endpoint: RouterEndpoint) -> None:
        client = self._factory(endpoint)
        error: RouterError | None = None
        try:
            client.connect()
        except RouterError as exc:
            error = exc
        except Exception as exc:  # never leave waiters hanging on a bug
            error = RouterError(f"{router.label}: login failed: {type(exc).__name__}")
        unused = error is not None
        with router.state:
            slot.connecting = False
            if error is not None:
                slot.error = error
                slot.retry_at = time.monotonic() + slot.backoff.next_delay()
            elif slot.users == 0:
                unused = True  # every monitor left while it was logging in
            else:
                slot.client = client
                slot.backoff.reset()
            slot.attempt_done.set()
        if unused:
            _close_quietly(client)

    def _retry_in(self, router: _Router, slot: _Slot) -> float:
        with router.state:
            if slot.error is None or slot.connecting:
                return 0.0
            return max(0.0, slot.retry_at - time.monotonic())

    def _last_error(self, router: _Router, slot: _Slot) -> str:
        with router.state:
            client, error = slot.client, slot.error
        if client is not None:
            return str(client.stats()["last_error"] or "")
        return "" if error is None else str(error)

    def _invalidate(self, router: _Router, slot: _Slot, client: RouterClient) -> None:
        with router.state:
            if slot.client is not client:
                return
            slot.client = None
        _close_quietly(client)

    def _release(self, router: _Router, slot: _Slot) -> None:
        client = None
        with router.state:
            slot.users -= 1
            if slot.users == 0:
                # No monitor left on it: a connection nobody uses only costs the
                # router one of its max-sessions. The next monitor dials at once.
                client, slot.client, slot.error = slot.client, None, None
                slot.backoff.reset()
        _close_quietly(client)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per router label: open connections and monitors using them."""
        with self._lock:
            routers = list(self._routers.values())
        return {
            r.label: {
                "connections": sum(1 for s in r.slots if s.client is not None),
                "users": sum(s.users for s in r.slots),
            }
            for r in routers
        }

    def close(self) -> None:
        with self._lock:
            routers, self._routers = list(self._routers.values()), {}
        for router in routers:
            for slot in router.slots:
                with router.state:
                    client, slot.client = slot.client, None
                _close_quietly(client)


def _close_quietly(client: RouterClient | None) -> None:
    if client is None:
        return
    try:
        client.close()
    except RouterError:
        pass


_hub: RouterHub | None = None
_hub_lock = threading.Lock()


def get_hub() -> RouterHub:
    """The process-wide hub, sized from settings.router_connections_per_process."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = RouterHub(get_settings().router_connections_per_process)
        return _hub


def current_hub() -> RouterHub | None:
    """The process's hub if monitors created one (metrics read it without creating it)."""
    with _hub_lock:
        return _hub


def close_hub() -> None:
    global _hub
    with _hub_lock:
        hub, _hub = _hub, None
    if hub is not None:
        hub.close()
