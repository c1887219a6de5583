"""Distributed monitor semaphore: global cap, per-router cap, single flight, fences.

One lease per monitor attempt, identified by its token (tasks.lifecycle.Token).
A lease is a slot in the global zset, a slot in its router's zset and the
customer's owner key, all with the same expiry, created/renewed/released together
by Lua scripts (atomic, Redis server time). Scripts are registered once per
client (`register_script` = EVALSHA with a NOSCRIPT fallback).

start and the reconciler take a lease as a *reservation* (no claimant); the monitor
run that picks up the message *claims* it with an id of its own. A claimed lease
answers only to its claimant: a second delivery of the same message is refused
(ClaimedElsewhere), and renewals and releases must name the claimant.

The fence returned by `acquire` is what `tasks.publisher` checks on every XADD:
a monitor whose lease expired, was released or taken over cannot append.

The same scripts serve a second key space (`LeaseSpace`): the router watches
(tasks/watch.py), one per router, whose "customer" is the router itself. Their slots
are apart from the monitors', so a watch never counts against MAX_CONCURRENT_MONITORS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from common import redis_clients
from common.text import as_text
from settings import Settings, get_settings
from tasks import keys, semaphore_lua

log = logging.getLogger(__name__)


class SemaphoreError(Exception):
    """Base class of the semaphore's refusals."""


class CapacityError(SemaphoreError):
    """No free slot: `scope` is "global" or "router"; `cap` the limit; `in_use` live slots."""

    def __init__(self, scope: str, cap: int, in_use: int) -> None:
        super().__init__(f"{scope} monitor limit reached: {in_use} of {cap} slots in use")
        self.scope = scope
        self.cap = cap
        self.in_use = in_use


class ClaimedElsewhere(SemaphoreError):
    """The lease of this token is already claimed by another monitor run (`claimant`)."""

    def __init__(self, token: str, claimant: str) -> None:
        super().__init__(f"lease {token} is already claimed by run {claimant}")
        self.token = token
        self.claimant = claimant


class AlreadyMonitored(SemaphoreError):
    """The customer is owned by another live lease (`owner_token`)."""

    def __init__(self, customer_id: str, owner_token: str) -> None:
        super().__init__(f"customer {customer_id} is already monitored (lease {owner_token})")
        self.customer_id = customer_id
        self.owner_token = owner_token


class StorageFull(SemaphoreError):
    """Redis is out of memory, or within the reserve of it (`used` and `maxmemory` in
    bytes): no lease is granted, because its monitor could not write a sample."""

    def __init__(self, used: int, maxmemory: int) -> None:
        super().__init__(
            f"redis out of memory: {used / 2**20:.1f} MiB used of maxmemory {maxmemory / 2**20:.1f} MiB"
            " (new monitors wait until memory is freed)"
        )
        self.used = used
        self.maxmemory = maxmemory


@dataclass(frozen=True)
class LeaseSpace:
    """Where one kind of lease lives: its global slots, its lease table, its per-router
    slots and its single-flight owner key (per customer for monitors, per router for
    watches). The fence counter is shared: fences only ever grow."""

    name: str
    slots: str
    leases: str
    router_slots: Callable[[object], str]
    owner: Callable[[object], str]


MONITORS = LeaseSpace("monitors", keys.GLOBAL_SLOTS, keys.LEASES, keys.router_slots, keys.customer_owner)
WATCHES = LeaseSpace(
    "watches", keys.WATCH_SLOTS, keys.WATCH_LEASES, keys.watch_router_slots, keys.watch_owner
)


@dataclass(frozen=True)
class Holder:
    """A live lease; `expires_in` is seconds left by the Redis clock."""

    token: str
    customer_id: str | None
    router_id: str | None
    expires_in: float


@dataclass(frozen=True)
class Owner:
    """The customer's current owner; `expires_in` is seconds left (None without TTL)."""

    token: str
    fence: int
    router_id: str | None
    expires_in: float | None


# (token, customer_id, router_id, claimant) of a claimed lease
ClaimedLease = tuple[str, object, object, str]

RENEW_CHUNK = 200
# The share of Redis maxmemory a new lease leaves free for the monitors already running
# (their samples keep arriving while new ones are refused). With no maxmemory set,
# nothing is checked.
MEMORY_RESERVE = 0.05


def _ttl_ms(ttl: float) -> int:
    ms = int(round(ttl * 1000))
    if ms <= 0:
        raise ValueError(f"lease ttl must be positive, got {ttl!r}")
    return ms


class Semaphore:
    """The semaphore of one lease space (default: the monitors') on one Redis client
    (thread-safe: redis-py pools connections)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        memory_reserve: float = MEMORY_RESERVE,
        space: LeaseSpace = MONITORS,
        replica_wait_ms: int = 0,
    ) -> None:
        """`replica_wait_ms` > 0: every acquire (reservation, claim, takeover) is followed,
        on its connection, by `WAIT 1 replica_wait_ms`, so the lease and its fence are on a
        replica before anyone acts on them (Sentinel: docs/architecture.md, Redis failover)."""
        if not 0 <= memory_reserve < 1:
            raise ValueError(f"memory_reserve must be in [0, 1), got {memory_reserve!r}")
        if replica_wait_ms < 0:
            raise ValueError(f"replica_wait_ms must not be negative, got {replica_wait_ms!r}")
        self.redis = client
        self.memory_reserve = memory_reserve
        self.space = space
        self.replica_wait_ms = replica_wait_ms
        # Acquires that no replica acknowledged within replica_wait_ms (logs, benchmarks).
        self.unreplicated = 0
        self._acquire = client.register_script(semaphore_lua.ACQUIRE)
        self._renew_many = client.register_script(semaphore_lua.RENEW_MANY)
        self._release = client.register_script(semaphore_lua.RELEASE)
        self._free_expired = client.register_script(semaphore_lua.FREE_EXPIRED)
        self._holders = client.register_script(semaphore_lua.HOLDERS)
        self._in_use = client.register_script(semaphore_lua.IN_USE)
        self._now = client.register_script(semaphore_lua.NOW)

    @classmethod
    def from_settings(
        cls, client: redis.Redis, settings: Settings | None = None, *, space: LeaseSpace = MONITORS
    ) -> Semaphore:
        """With REDIS_REPLICA_WAIT_MS when Redis is reached through Sentinel (a plain Redis
        has no replica to wait for)."""
        settings = settings or get_settings()
        wait = settings.redis_replica_wait_ms if redis_clients.uses_sentinel(settings) else 0
        return cls(client, space=space, replica_wait_ms=wait)

    def _execute_acquires(self, pipe: Any) -> list[Any]:
        """Send a pipeline of acquire script calls, each one's reply in order. With
        `replica_wait_ms`, a WAIT follows them on the same connection (WAIT counts the
        writes of its own connection) and the acquires it did not see replicated are
        counted and logged."""
        if not self.replica_wait_ms:
            return list(pipe.execute())
        pipe.wait(1, self.replica_wait_ms)
        replies = list(pipe.execute())
        acks = replies.pop()
        fresh = sum(1 for r in replies if int(r[0]) == 1)
        if fresh:
            self._replicated(acks, fresh)
        return replies

    def _replicated(self, acks: Any, count: int) -> None:
        if int(acks) < 1:
            self.unreplicated += count
            log.warning(
                "%d lease acquire(s) not acknowledged by a replica within %d ms: a failover "
                "now would lose them (their monitors stop at their next renewal and restart)",
                count,
                self.replica_wait_ms,
            )

    def acquire(
        self,
        token: str,
        customer_id: object,
        router_id: object,
        *,
        global_limit: int,
        router_limit: int | None,
        ttl: float,
        replace: str | None = None,
        claimant: str | None = None,
    ) -> int:
        """Take (or refresh, for the same token) a lease; return its fence.

        Raises CapacityError when the global or router cap is reached,
        AlreadyMonitored when another token owns the customer and StorageFull when
        Redis is within `memory_reserve` of its maxmemory. `replace` evicts
        that token first if it is the current owner (see `takeover`). With
        `claimant` the lease is claimed for that run (see `claim`).
        """
        if global_limit < 1:
            raise ValueError(f"global_limit must be at least 1, got {global_limit}")
        pipe = self.redis.pipeline(transaction=False)
        self._acquire(
            keys=self._acquire_keys(customer_id, router_id),
            args=self._acquire_args(
                token, customer_id, router_id, global_limit, router_limit, ttl, replace, claimant
            ),
            client=pipe,
        )
        (reply,) = self._execute_acquires(pipe)
        result = self._acquired(reply, token, customer_id)
        if isinstance(result, SemaphoreError):
            raise result
        return result

    def acquire_many(
        self,
        requests: Sequence[tuple[str, object, object, int | None]],
        *,
        global_limit: int,
        ttl: float,
    ) -> list[int | SemaphoreError]:
        """Reservations for many (token, customer_id, router_id, router_limit) in ONE round
        trip: a script call each, in order, as `acquire` would make them one after the
        other (each is atomic on its own; a cap reached half-way refuses the rest). Each
        answer is the fence, or the SemaphoreError `acquire` would have raised."""
        if global_limit < 1:
            raise ValueError(f"global_limit must be at least 1, got {global_limit}")
        if not requests:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for token, customer_id, router_id, router_limit in requests:
            self._acquire(
                keys=self._acquire_keys(customer_id, router_id),
                args=self._acquire_args(token, customer_id, router_id, global_limit, router_limit, ttl),
                client=pipe,
            )
        replies = self._execute_acquires(pipe)
        return [
            self._acquired(reply, token, customer_id)
            for reply, (token, customer_id, _, _) in zip(replies, requests)
        ]

    def _acquire_keys(self, customer_id: object, router_id: object) -> list[str]:
        return [
            self.space.slots,
            self.space.router_slots(router_id),
            self.space.owner(customer_id),
            keys.FENCE_COUNTER,
            self.space.leases,
            keys.AFFINITY_ROUTERS,
        ]

    def _acquire_args(
        self,
        token: str,
        customer_id: object,
        router_id: object,
        global_limit: int,
        router_limit: int | None,
        ttl: float,
        replace: str | None = None,
        claimant: str | None = None,
    ) -> list[str | int]:
        if router_limit is not None and router_limit < 1:
            raise ValueError(f"router_limit must be at least 1 or None, got {router_limit}")
        return [
            token,
            str(customer_id),
            str(router_id),
            global_limit,
            router_limit or 0,
            _ttl_ms(ttl),
            replace or "",
            claimant or "",
            repr(self.memory_reserve),
        ]

    @staticmethod
    def _acquired(reply: Any, token: str, customer_id: object) -> int | SemaphoreError:
        code = int(reply[0])
        if code in (1, 2):
            return int(reply[1])
        if code == -1:
            return CapacityError(as_text(reply[1]), int(reply[2]), int(reply[3]))
        if code == -2:
            return AlreadyMonitored(str(customer_id), as_text(reply[1]))
        if code == -3:
            return ClaimedElsewhere(token, as_text(reply[1]))
        if code == -4:
            return StorageFull(int(reply[1]), int(reply[2]))
        raise RuntimeError(f"unexpected semaphore reply {reply!r}")

    def takeover(
        self,
        token: str,
        customer_id: object,
        router_id: object,
        *,
        previous_token: str,
        global_limit: int,
        router_limit: int | None,
        ttl: float,
    ) -> int:
        """Atomically evict `previous_token` (if it still owns the customer) and acquire.

        For the reconciler when it knows the previous attempt is dead before its TTL
        ran out; the old fence stops working at once. Still bounded by the caps.
        """
        return self.acquire(
            token,
            customer_id,
            router_id,
            global_limit=global_limit,
            router_limit=router_limit,
            ttl=ttl,
            replace=previous_token,
        )

    def claim(
        self,
        token: str,
        customer_id: object,
        router_id: object,
        claimant: str,
        *,
        global_limit: int,
        router_limit: int | None,
        ttl: float,
    ) -> int:
        """Take the reservation of `token` for the run `claimant` (or re-take it if it
        expired in the queue and the customer is still free); return its fence.

        Raises ClaimedElsewhere when another run already claimed it, and what
        `acquire` raises otherwise.
        """
        if not claimant:
            raise ValueError("a claim needs the claimant's id")
        return self.acquire(
            token,
            customer_id,
            router_id,
            global_limit=global_limit,
            router_limit=router_limit,
            ttl=ttl,
            claimant=claimant,
        )

    def renew_many(self, leases: Sequence[ClaimedLease], ttl: float) -> list[bool]:
        """Renew claimed leases in one round trip; False = lease lost, stop that monitor now."""
        if not leases:
            return []
        ttl_ms = _ttl_ms(ttl)
        # One round trip, but a script call per chunk: Redis serves other clients (the
        # publishers, the relay) between chunks instead of stalling for the whole batch.
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(leases), RENEW_CHUNK):
            lease_keys: list[str] = [self.space.slots]
            args: list[str | int] = [ttl_ms]
            for token, customer_id, router_id, claimant in leases[start : start + RENEW_CHUNK]:
                lease_keys.append(self.space.owner(customer_id))
                lease_keys.append(self.space.router_slots(router_id))
                args.append(token)
                args.append(claimant)
            self._renew_many(keys=lease_keys, args=args, client=pipe)
        return [bool(int(x)) for reply in pipe.execute() for x in reply]

    def release(
        self, token: str, customer_id: object, router_id: object, claimant: str | None = None
    ) -> bool:
        """Give the lease back; only what `token` still holds is removed. True if it held any.

        With `claimant`, nothing is removed when another run has claimed the lease."""
        reply = self._release(
            keys=[
                self.space.slots,
                self.space.router_slots(router_id),
                self.space.owner(customer_id),
                self.space.leases,
            ],
            args=[token, claimant or ""],
        )
        return bool(int(reply))

    def free_expired(self) -> list[str]:
        """Remove expired leases (slots, owner keys, lease table); return the freed tokens."""
        reply = self._free_expired(keys=[self.space.slots, self.space.leases])
        return [as_text(t) for t in reply]

    def in_use(self, router_id: object | None = None) -> int:
        """Live slots, globally or for one router (expired-but-untrimmed ones not counted)."""
        key = self.space.slots if router_id is None else self.space.router_slots(router_id)
        return int(self._in_use(keys=[key]))

    def now_ms(self) -> int:
        """The Redis server's clock, in ms: the one clock every engine deadline uses."""
        return int(self._now())

    def holders(self) -> list[Holder]:
        """Every live lease with its customer, router and time left."""
        out: list[Holder] = []
        for token, remaining_ms, info in self._holders(keys=[self.space.slots, self.space.leases]):
            detail = json.loads(as_text(info)) if info else {}
            out.append(
                Holder(
                    token=as_text(token),
                    customer_id=detail.get("customer"),
                    router_id=detail.get("router"),
                    expires_in=int(remaining_ms) / 1000.0,
                )
            )
        return out

    def owner_of(self, customer_id: object) -> Owner | None:
        """The customer's (a watch: the router's) current owner lease, or None."""
        key = self.space.owner(customer_id)
        # No MULTI: a Redis at maxmemory refuses every command queued in a transaction,
        # reads included. A key that expires between the two reads has no TTL left.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.pttl(key)
        fields, pttl = pipe.execute()
        if not fields:
            return None
        data = {as_text(k): as_text(v) for k, v in fields.items()}
        if "token" not in data:
            return None
        return Owner(
            token=data["token"],
            fence=int(data.get("fence", 0)),
            router_id=data.get("router"),
            expires_in=pttl / 1000.0 if pttl is not None and pttl >= 0 else None,
        )
