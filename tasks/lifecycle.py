"""One monitor's life in one place: its names, its numbers and the rules that every
part of the engine (start/stop, the monitor task, the lease keeper, the reconciler)
agrees on. docs/architecture.md draws the whole life; in short:

    session   a row in monitor_sessions (PostgreSQL): what SHOULD run. desired_state
              running/stopped; `attempt` counts the launches of this session.
    attempt   one launch of a session: Token(session_id, attempt), written
              "<session>:<attempt>"; its Celery task id is "monitor-<session>-<attempt>".
    lease     Redis: a global slot, a router slot and the customer's owner key, one TTL,
              keyed by the token. Taken as a *reservation* by start or the reconciler,
              then *claimed* by the one monitor run that executes the attempt.
    fence     a number handed out with every fresh lease; every sample is published
              with token+fence, so a producer that lost its lease cannot append.
    stop key  Redis: "stop this session" with the reason; polled in bulk by each
              worker's lease keeper (a revoke only reaches the worker that runs it).
    handover  a monitor ended by its worker's shutdown releases its lease but leaves
              its session wanted: the reconciler launches the next attempt elsewhere.

Every deadline is measured by the Redis server's clock (Lua TIME), never by the
clocks of the hosts that send or run a message.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from models import Customer, MonitorSession
from models.resolution import MonitorTarget, ResolutionError
from settings import Settings, get_settings
from tasks import keys
from tasks.app import app
from tasks.message import CustomerMeta, status_entry
from tasks.publisher import Publisher
from tasks.sessions import db
from tasks.targets import meta_for, resolve_customer

log = logging.getLogger(__name__)

MONITOR_TASK = "tasks.monitor.monitor"
FIRST_ATTEMPT = 1

# Why a monitor ended: the `reason` of its stopped event and its row's stop_reason
# (a stop request carries its own words, e.g. "stopped by api").
STOP_REQUESTED = "stop-requested"
# A revoke without a stop request (the API always sends both) came from outside.
REVOKED = "revoked (Flower or celery control)"
WORKER_SHUTDOWN = "worker-shutdown"
# The worker process lost its hold on the monitor's router (tasks/affinity.py) and may
# not keep an API session there: like a shutdown, the monitor hands its session over.
ROUTER_MOVED = "router-moved"
HANDOVER_REASONS = frozenset({WORKER_SHUTDOWN, ROUTER_MOVED})
MAX_DURATION = "max-duration"
LEASE_LOST = "lease-lost"
SESSION_CLOSED = "session closed"
NOT_WANTED = "not-wanted"
# The `reason` of the `offline` event (and the log line) of a monitor whose samples a
# full Redis refuses.
REDIS_OUT_OF_MEMORY = "redis out of memory"


@dataclass(frozen=True)
class Token:
    """One attempt of one session: the lease's key and the Celery task's name."""

    session_id: str
    attempt: int

    @classmethod
    def parse(cls, text: str) -> Token:
        """The token of a lease as Redis holds it ("<session>:<attempt>")."""
        session_id, sep, attempt = text.rpartition(":")
        if not sep or not session_id or not attempt.isdigit():
            raise ValueError(f"not a monitor lease token: {text!r}")
        return cls(session_id, int(attempt))

    @classmethod
    def of(cls, row: MonitorSession) -> Token:
        """The current attempt of a session row."""
        return cls(str(row.id), row.attempt)

    def __str__(self) -> str:
        return f"{self.session_id}:{self.attempt}"

    @property
    def task_id(self) -> str:
        return f"monitor-{self.session_id}-{self.attempt}"

    def next(self) -> Token:
        return Token(self.session_id, self.attempt + 1)


def started_reason(attempt: int) -> str:
    """The `reason` of an attempt's `started` event: the first attempt's starts the
    session's entries (tasks/report.py tells a whole session from a trimmed one by it)."""
    return f"attempt {attempt}"


def new_claimant() -> str:
    """An id for one monitor run, unique across hosts, processes and threads: the lease
    it claims answers to this id only (a message delivered twice makes one producer)."""
    return f"{worker_name() or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


_worker_name: str | None = None


def set_worker_name(name: str) -> None:
    """This process's Celery node name (e.g. `m1@host1`), set when the worker is ready:
    claimants carry it, so the status and the logs say which worker runs a monitor."""
    global _worker_name
    _worker_name = name


def worker_name() -> str | None:
    return _worker_name


def worker_of_claimant(claimant: str) -> str:
    """The worker (node name, or host name) part of a claimant (see new_claimant)."""
    return claimant.rsplit(":", 2)[0]


# -- stopping -----------------------------------------------------------------------------------


# A stop accepted while PostgreSQL is away lives only in its stop key until the row is
# written: the key must outlast the outage (the reconciler finishes such stops when
# PostgreSQL is back). A key is a few bytes; a stopped session never runs again.
STOP_KEY_TTL = 24 * 3600.0


def stop_key_ttl(settings: Settings | None = None) -> float:
    """How long a stop request stays in Redis: until its row says stopped for sure. It
    must outlive the monitor it stops (a keeper polls every 0.25 s, a queued message
    waits at most one TTL) and a PostgreSQL outage: a day, or a few lease TTLs."""
    settings = settings or get_settings()
    return max(STOP_KEY_TTL, 4 * settings.monitor_lease_ttl)


# allow-oom: a stop request must get through a Redis at maxmemory (that is when an
# operator stops monitors) and it is a few bytes; a plain SET would be refused. The
# PUBLISH wakes every keeper at once (keys.STOP_CHANNEL).
_SET_STOP = (
    "#!lua flags=allow-oom\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
    "return 1"
)


def request_stop(
    client: redis.Redis, session_id: object, reason: str, settings: Settings | None = None
) -> None:
    """Ask the monitor of `session_id` to stop; its keeper sees it at once (pub/sub),
    or at its next poll if the notice is missed."""
    ttl_ms = int(stop_key_ttl(settings) * 1000)
    set_stop_key(client, keys.session_stop(session_id), reason or STOP_REQUESTED, ttl_ms, str(session_id))


def set_stop_key(client: redis.Redis, key: str, reason: str, ttl_ms: int, notice: str) -> None:
    """SET a stop key (also at maxmemory) and wake every keeper to look at it."""
    client.register_script(_SET_STOP)(keys=[key], args=[reason, ttl_ms, keys.STOP_CHANNEL, notice])


# -- launching ----------------------------------------------------------------------------------


def launch(token: Token, fence: int, target: MonitorTarget, enqueued_ms: int, producer: Any = None) -> None:
    """Send the monitor message of an attempt whose lease is reserved, to its router's
    own queue: only the few processes that hold the router take it (tasks/affinity.py);
    a start beyond them waits there, `starting`.

    The customer's id, username, router and interface ride along as keyword arguments
    so that Flower shows them and its search finds a monitor by username. There is no
    Celery `expires`: it is stamped by the sender's clock and checked by the worker's,
    so hosts whose clocks are apart would drop every message; the run checks the age
    of `enqueued_ms` (Redis time) against Redis time instead. `producer`: a kombu
    producer to reuse (a bulk start sends many messages on one connection). Nobody waits
    for a monitor's result: it has none worth keeping.
    """
    meta = meta_for(target)
    app.send_task(
        MONITOR_TASK,
        args=[token.session_id, token.attempt, fence],
        kwargs={
            "enqueued_ms": enqueued_ms,
            "customer_id": meta.customer_id,
            "username": meta.username,
            "router": meta.router,
            "interface": meta.interface,
        },
        task_id=token.task_id,
        queue=keys.router_queue(target.router_id),
        producer=producer,
        # send_task does not read task_ignore_result: without this the sender subscribes
        # to the task's result channel (and unsubscribes when the handle is collected).
        ignore_result=True,
    )


def is_redis_out_of_memory(exc: BaseException) -> bool:
    """Did Redis refuse a write because it is at maxmemory? Also through kombu, which may
    re-raise the refused enqueue as one of its own errors (the cause is kept)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, redis.OutOfMemoryError) or "> 'maxmemory'" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def message_expired(enqueued_ms: int | None, now_ms: int, settings: Settings | None = None) -> bool:
    """A message that waited longer than settings.message_expiry is stale: its
    reservation is gone and the reconciler has launched a newer attempt."""
    if enqueued_ms is None:
        return False
    settings = settings or get_settings()
    return now_ms - enqueued_ms > settings.message_expiry * 1000


# -- the last word ------------------------------------------------------------------------------


def publish_stopped(publisher: Publisher, row: MonitorSession, reason: str) -> None:
    """Unfenced `stopped` for a session whose monitor cannot say it itself (it never
    ran, died, or ended before it could resolve its customer)."""
    try:
        meta = _meta_for_row(row)
        entry = status_entry("stopped", meta, session_id=row.id, seq=0, fence=None, reason=reason)
        publisher.publish_status(entry)
    except Exception:
        log.exception("could not publish the stopped event of session %s", row.id)


def _meta_for_row(row: MonitorSession) -> CustomerMeta:
    """The customer as the message names it; when it no longer resolves (deleted,
    suspended, its router row gone) whatever the database still knows of it."""
    try:
        return meta_for(resolve_customer(row.customer_id))
    except ResolutionError:
        pass
    with db() as s:
        customer = s.get(Customer, row.customer_id)
        return CustomerMeta(
            customer_id=str(row.customer_id),
            customer_name=customer.name if customer is not None else "",
            username=customer.username if customer is not None else "",
            service_type=str(customer.service_type) if customer is not None else "",
            interface="",
            router=row.router_id,
        )
