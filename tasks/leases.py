"""One lease keeper per worker process: bulk renewals and bulk stop-key polling.

With ~1,000 monitors per process, one renew call and one stop GET per monitor
per second would be 2,000 round trips a second. Instead every monitor registers
here and the keeper thread
- every `renew_interval`, renews in ONE script call the leases of the monitors that
  reported progress since the previous round. A loop that stopped iterating (hung on
  a socket, deadlocked) is not renewed and loses its lease after the TTL, which is
  exactly what lets the reconciler restart it elsewhere. A renew answered "lost"
  sets that monitor's stop event (reason LEASE_LOST) at once; so does going longer
  than the TTL without a confirmed renewal (Redis unreachable: the server-side lease
  is gone by then, and another worker may already own the customer);
- every `stop_poll_interval` (default 0.25 s), MGETs the stop keys of all registered
  sessions and sets the stop event of each one that has a stop request, so a stop
  is seen well within a second; in the same round it looks up each monitor's Celery
  task id in the process's revoked set (a revoke from the API or Flower only flags
  the id in the worker), so one thread watches every stop source.

Monitors call `handle.progress()` on every loop iteration (a sample, or a backoff
wait finishing), not only when a sample arrives: a router being offline is not a
hung loop.

Router watches (tasks/watch.py) register here too, with their own lease space and stop
key: one keeper renews and stops both kinds. The keeper's pub/sub connection also
hears the watches' session-up notices (keys.SESSION_UP_CHANNEL) and hands each to the
monitor of that customer (`LeaseHandle.on_session_up`): a PPPoE monitor waiting for
its interface retries at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common import redis_clients
from common.text import as_text
from settings import Settings, get_settings
from tasks import keys
from tasks.lifecycle import LEASE_LOST, REVOKED, STOP_REQUESTED
from tasks.semaphore import MONITORS, LeaseSpace, Semaphore

log = logging.getLogger(__name__)

_MGET_CHUNK = 500


@dataclass(eq=False)
class LeaseHandle:
    """A registered monitor. `stop_event` is set (once) with `stop_reason` when it must stop."""

    token: str
    customer_id: str
    router_id: str
    session_id: str
    claimant: str
    task_id: str | None
    stop_key: str
    stop_event: threading.Event
    stop_reason: str | None = None
    space: LeaseSpace = MONITORS
    # Called (from the keeper's thread) when a router watch says this customer's session
    # came up; must not block.
    on_session_up: Callable[[], None] | None = field(default=None, repr=False)
    # Registration counts as progress: the lease was just acquired.
    _progress: bool = field(default=True, repr=False)
    _last_renewed: float = field(default_factory=time.monotonic, repr=False)

    def progress(self) -> None:
        """Say the loop is alive; only then is the lease renewed in the next round."""
        self._progress = True

    def request_stop(self, reason: str) -> None:
        """Set the stop event; the first reason wins (later ones are ignored)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_event.set()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    @property
    def lease_lost(self) -> bool:
        return self.stop_reason == LEASE_LOST


class LeaseKeeper:
    """The per-process keeper thread; thread-safe register/unregister; `close()` stops it."""

    def __init__(
        self,
        semaphore: Semaphore,
        *,
        ttl: float,
        renew_interval: float,
        stop_poll_interval: float = 0.25,
        client: redis.Redis | None = None,
        revoked: Callable[[], Container[str]] | None = None,
    ) -> None:
        """`client`: a connection of the keeper's own (see `dedicated_client`); without it
        the keeper shares the semaphore's client and pool. `revoked`: the process's
        revoked task ids (Celery's worker state), looked up every stop poll."""
        if not 0 < renew_interval < ttl:
            raise ValueError(f"renew_interval ({renew_interval}) must be positive and below ttl ({ttl})")
        if stop_poll_interval <= 0:
            raise ValueError("stop_poll_interval must be positive")
        self.semaphore = semaphore
        self.redis: redis.Redis = client or semaphore.redis
        self._renewer = Semaphore(client) if client is not None else semaphore
        self._renewers: dict[str, Semaphore] = {self._renewer.space.name: self._renewer}
        self._owns_client = client is not None
        self.ttl = ttl
        self.renew_interval = renew_interval
        self.stop_poll_interval = stop_poll_interval
        self._revoked = revoked
        self._pubsub: redis.client.PubSub | None = None
        # Renewal outcomes since start, for tasks.metrics (read at scrape time).
        self.renewals = {"ok": 0, "lost": 0, "error": 0}
        self._handles: dict[str, LeaseHandle] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        semaphore: Semaphore,
        settings: Settings | None = None,
        revoked: Callable[[], Container[str]] | None = None,
    ) -> LeaseKeeper:
        settings = settings or get_settings()
        return cls(
            semaphore,
            ttl=settings.monitor_lease_ttl,
            renew_interval=settings.monitor_renew_interval,
            client=dedicated_client(settings),
            revoked=revoked,
        )

    # -- registration ---------------------------------------------------------------

    def register(
        self,
        token: str,
        customer_id: object,
        router_id: object,
        *,
        session_id: object,
        claimant: str,
        task_id: str | None = None,
        stop_event: threading.Event | None = None,
        space: LeaseSpace = MONITORS,
        stop_key: str | None = None,
    ) -> LeaseHandle:
        """Track a lease `claimant` claimed with `token`. Pass `stop_event` to share one
        Event with other stop sources (the source's wake-up, worker shutdown). A lease of
        another `space` (a router watch) names its own `stop_key`."""
        handle = LeaseHandle(
            token=token,
            customer_id=str(customer_id),
            router_id=str(router_id),
            session_id=str(session_id),
            claimant=claimant,
            task_id=task_id,
            stop_key=stop_key or keys.session_stop(session_id),
            stop_event=stop_event or threading.Event(),
            space=space,
        )
        with self._lock:
            if token in self._handles:
                raise ValueError(f"lease {token} is already registered")
            self._handles[token] = handle
        return handle

    def unregister(self, handle: LeaseHandle) -> None:
        """Stop tracking (call before or after release; idempotent)."""
        with self._lock:
            if self._handles.get(handle.token) is handle:
                del self._handles[handle.token]

    def handles(self) -> list[LeaseHandle]:
        with self._lock:
            return list(self._handles.values())

    def stop_all(self, reason: str) -> None:
        """E.g. on worker_shutting_down: every registered monitor gets its stop event."""
        for handle in self.handles():
            handle.request_stop(reason)

    # -- one round of each job (the thread calls these; tests may too) ----------------

    def renew_round(self) -> int:
        """Renew the leases of monitors that progressed; return how many were renewed."""
        with self._lock:
            live = [h for h in self._handles.values() if not h.lease_lost]
            due = [h for h in live if h._progress]
            for h in due:
                h._progress = False
        renewed = 0
        by_space: dict[str, list[LeaseHandle]] = {}
        for h in due:
            by_space.setdefault(h.space.name, []).append(h)
        for group in by_space.values():
            renewed += self._renew(group)
        now = time.monotonic()
        for h in live:
            if now - h._last_renewed >= self.ttl and not h.lease_lost:
                log.warning("lease %s not renewed for %.1fs: treating it as lost", h.token, self.ttl)
                h.request_stop(LEASE_LOST)
        return renewed

    def _renew(self, due: list[LeaseHandle]) -> int:
        """Renew leases of one space in one round trip; return how many were renewed."""
        # The server extends to (its now + ttl) with its now >= started here, so
        # started + ttl is a safe lower bound of the new expiry.
        started = time.monotonic()
        try:
            results = self._renewer_of(due[0].space).renew_many(
                [(h.token, h.customer_id, h.router_id, h.claimant) for h in due], self.ttl
            )
        except redis.RedisError as exc:
            self.renewals["error"] += len(due)
            log.warning("lease renewal failed for %d %s: %s", len(due), due[0].space.name, exc)
            for h in due:
                h._progress = True  # retry them next round
            return 0
        with self._lock:
            registered = {h.token for h in due if self._handles.get(h.token) is h}
        renewed = 0
        for h, ok in zip(due, results):
            if ok:
                h._last_renewed = started
                renewed += 1
                self.renewals["ok"] += 1
            elif h.token in registered:
                self.renewals["lost"] += 1
                log.warning("lease %s lost (customer %s)", h.token, h.customer_id)
                h.request_stop(LEASE_LOST)
            # else: the monitor ended during this round and released its own lease
            # (a burst of stops made this a WARNING per stopped monitor).
        return renewed

    def _renewer_of(self, space: LeaseSpace) -> Semaphore:
        renewer = self._renewers.get(space.name)
        if renewer is None:
            renewer = self._renewers[space.name] = Semaphore(self.redis, space=space)
        return renewer

    def session_up(self, customer_ids: Iterable[str]) -> int:
        """A router watch saw these customers' sessions come up: wake their monitors
        (those that asked to be). Returns how many were woken."""
        wanted = set(customer_ids)
        woken = 0
        for h in self.handles():
            if h.customer_id in wanted and h.on_session_up is not None and not h.stopped:
                try:
                    h.on_session_up()
                    woken += 1
                except Exception:  # one monitor's hook must not cost the others theirs
                    log.exception("session-up hook of lease %s failed", h.token)
        return woken

    def poll_stops(self) -> int:
        """Stop keys (one MGET per chunk), then revoked task ids, of the monitors not yet
        stopped; return how many were stopped. A stop request's words win over the
        revoke the API sends with it."""
        pending = [h for h in self.handles() if not h.stopped]
        stopped = 0
        for chunk in _chunks(pending, _MGET_CHUNK):
            try:
                values = self.redis.mget([h.stop_key for h in chunk])
            except redis.RedisError as exc:
                log.warning("stop-key poll failed: %s", exc)
                break
            for h, value in zip(chunk, values):
                if value is not None:
                    h.request_stop(as_text(value) or STOP_REQUESTED)
                    stopped += 1
        if self._revoked is not None:
            revoked = self._revoked()
            for h in pending:
                if not h.stopped and h.task_id is not None and h.task_id in revoked:
                    h.request_stop(REVOKED)
                    stopped += 1
        return stopped

    # -- the thread ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (monitors keep their events; their leases simply stop renewing)."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._drop_pubsub()
        if self._owns_client:
            self.redis.close()

    def _run(self) -> None:
        next_renew = time.monotonic() + self.renew_interval
        while not self._closing.is_set():
            try:
                if time.monotonic() >= next_renew:
                    next_renew = time.monotonic() + self.renew_interval
                    self.renew_round()
                self.poll_stops()
            except Exception:  # the keeper must outlive any single bad round
                log.exception("lease keeper round failed")
            wait = min(self.stop_poll_interval, max(0.0, next_renew - time.monotonic()))
            self._wait_for_stop_notice(wait)

    def _wait_for_stop_notice(self, timeout: float) -> None:
        """Wait up to `timeout`, returning early when a stop request is published: the
        next round's poll then finds its key at once (a stop takes milliseconds, not a
        poll interval). A burst of notices is drained so it costs one poll."""
        try:
            if self._pubsub is None:
                self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(keys.STOP_CHANNEL, keys.SESSION_UP_CHANNEL)
            message = self._pubsub.get_message(timeout=timeout)
            sessions_up: list[str] = []
            while message is not None:
                if as_text(message.get("channel", b"")) == keys.SESSION_UP_CHANNEL:
                    sessions_up.append(as_text(message.get("data", b"")))
                message = self._pubsub.get_message(timeout=0)
            if sessions_up:
                self.session_up(sessions_up)
        except redis.RedisError:
            # Polling alone still sees every stop; try the channel again next round.
            self._drop_pubsub()
            self._closing.wait(timeout)

    def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError:
                pass


def dedicated_client(settings: Settings | None = None) -> redis.Redis:
    """The keeper's own small client: with a thousand monitor threads on the shared pool,
    a renewal or stop poll must never queue for a connection, and during an outage it
    must fail fast (one retry, short timeouts) so the TTL bookkeeping keeps running.
    Its pub/sub connection (stop notices) comes from the same pool: through Sentinel it
    is re-opened on the promoted master after a failover (`_drop_pubsub`)."""
    return redis_clients.sync_client(
        redis_clients.ClientOptions(
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 1),
            max_connections=2,
        ),
        settings,
    )


def _chunks(items: list[LeaseHandle], size: int) -> Iterable[list[LeaseHandle]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
