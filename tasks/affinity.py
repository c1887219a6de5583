"""Router affinity: a router's monitors and watch run in a bounded set of worker processes.

Every monitor and watch message goes to its router's own Celery queue
(keys.router_queue: `monitors.<router>`, tasks/lifecycle.py). A monitors worker process
consumes the queue of a router only while it *holds* the router: a member of the router's
holders zset (keys.affinity_holders), scored by the hold's expiry on the Redis clock. A
router has at most max(1, cap // ROUTER_CONNECTIONS_PER_PROCESS) holders, where cap is
its routers row's max_api_sessions or ROUTER_MAX_API_SESSIONS; so the API sessions on the
router from all workers stay within the cap, however many processes run
(docs/architecture.md, Router affinity).

One keeper thread per monitors worker process (AffinityKeeper, started when the worker is
ready) runs one atomic script (ROUND) every AFFINITY_INTERVAL seconds that:
  1. heartbeats the process in keys.AFFINITY_PROCESSES (the live processes, P of them);
  2. renews the process's holds and drops everybody's expired ones;
  3. gives up holds it must: a router no longer known, or a surplus (more holders than
     min(cap, ceil(P / routers)), or this process holding two more routers than the
     least-loaded one) - but only while the process runs nothing there (sticky: a
     running monitor never moves for balance). Only a lowered cap makes a busy process
     give one up: the holders ranked last by the rendezvous hash hand their monitors over;
  4. re-takes a router it runs monitors on but lost (its hold expired during a Redis
     outage) if the cap has room; otherwise reports it lost;
  5. takes at most one more router: (a) one with no holder at all (always: a router
     must be covered); else (b) one below min(cap, ceil(P / routers)) holders if this
     process holds no more routers than the least-loaded live process and is, among
     those, the first on a host none of the router's holders runs on (so one host's
     death does not leave a router without holders), then by the rendezvous hash of
     (router, node) - deterministic, so the assignment comes back the same after a
     restart; else (c) when it holds nothing, one
     whose cap has room (a new host takes part in new starts without moving anything).
Then the keeper makes the worker consume the queues of the routers it holds and stop
consuming the others (Celery's add_consumer / cancel_consumer control commands, which
the worker runs on its own loop), and hands over the monitors of a router it lost
(lifecycle.ROUTER_MOVED: the monitor releases its lease, its session stays wanted, and
the reconciler relaunches it into the router's queue, which a holder consumes).

The routers to place are the routers table's (with the mikrotik_ids customers name
without a row), read every AFFINITY_REFRESH seconds, and every router a lease was ever
taken on (keys.AFFINITY_ROUTERS, added by the semaphore's acquire): a router added since
the last read is placed at the next round (the list is read again at once, at most every
few seconds), so its first monitor does not wait for the refresh.

A hold lasts MONITOR_LEASE_TTL: when a process dies its holds expire with its monitors'
leases, any live process takes a router left with no holder within one round, and the
reconciler's next pass relaunches the dead monitors into the router's queue.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import redis

from common.text import as_text
from settings import Settings, get_settings
from tasks import keys

log = logging.getLogger(__name__)

# KEYS[1] the live processes' zset; KEYS[1 + i] the holders zset of router i.
# ARGV: node, ttl ms, n, then per router: id, max holders (0: not a known router any
# more: give it up once idle), busy (1: this process runs monitors or a watch there).
# Returns {held, lost, taken, released}: lists of router ids.
ROUND = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local node, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local exp = now + ttl
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], exp, node)
redis.call('PEXPIRE', KEYS[1], ttl)
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local load = {}
for _, p in ipairs(live) do load[p] = 0 end
local rid, cap, busy, holders, mine = {}, {}, {}, {}, {}
local known = 0
for i = 1, n do
  local b = 3 + (i - 1) * 3
  rid[i], cap[i], busy[i] = ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3] == '1'
  if cap[i] > 0 then known = known + 1 end
  local key = KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZSCORE', key, node) then
    redis.call('ZADD', key, exp, node)
    redis.call('PEXPIRE', key, ttl)
    mine[i] = true
  end
  holders[i] = redis.call('ZRANGE', key, 0, -1)
  for _, h in ipairs(holders[i]) do
    if load[h] then load[h] = load[h] + 1 end
  end
end
local share = math.ceil(#live / math.max(1, known))
local function minload()
  local m = nil
  for _, p in ipairs(live) do
    if m == nil or load[p] < m then m = load[p] end
  end
  return m or 0
end
local function score(i, p) return redis.sha1hex(rid[i] .. '|' .. p) end
-- 1 when no holder of router i runs on p's host (the part of a node name after '@'):
-- a router's holders on two hosts keep it served when one host dies.
local function host(p) return string.match(p, '@(.*)$') or p end
local function spreads(i, p)
  for _, h in ipairs(holders[i]) do
    if h ~= p and host(h) == host(p) then return 0 end
  end
  return 1
end
local function drop(i)
  redis.call('ZREM', KEYS[i + 1], node)
  mine[i] = nil
  load[node] = load[node] - 1
  local kept = {}
  for _, h in ipairs(holders[i]) do if h ~= node then table.insert(kept, h) end end
  holders[i] = kept
end
local function add(i)
  redis.call('ZADD', KEYS[i + 1], exp, node)
  redis.call('PEXPIRE', KEYS[i + 1], ttl)
  mine[i] = true
  load[node] = load[node] + 1
  table.insert(holders[i], node)
end
local lost, taken, released = {}, {}, {}
-- 3: give up what this process must or may
for i = 1, n do
  if mine[i] then
    local h = #holders[i]
    if cap[i] == 0 then
      if not busy[i] then drop(i); table.insert(released, rid[i]) end
    elseif h > cap[i] then
      -- a lowered cap: the holders ranked last by the hash give way, busy or not
      local better, mine_score = 0, score(i, node)
      for _, p in ipairs(holders[i]) do
        if p ~= node and score(i, p) > mine_score then better = better + 1 end
      end
      if better >= cap[i] then
        drop(i)
        if busy[i] then table.insert(lost, rid[i]) else table.insert(released, rid[i]) end
      end
    elseif not busy[i] and load[node] > 1 and h > 1
        and (h > math.min(cap[i], share) or load[node] > minload() + 1) then
      drop(i); table.insert(released, rid[i])
    elseif not busy[i] and spreads(i, node) == 0 then
      -- An idle hold beside another of the same host: an idle process of another host
      -- takes it at its round (nothing runs here yet, so nothing moves).
      for _, p in ipairs(live) do
        if load[p] == 0 and spreads(i, p) == 1 then
          drop(i); table.insert(released, rid[i]); break
        end
      end
    end
  end
end
-- 4: a router this process runs monitors on but no longer holds
for i = 1, n do
  if busy[i] and not mine[i] and cap[i] > 0 then
    if #holders[i] < cap[i] then add(i); table.insert(taken, rid[i])
    else
      local listed = false
      for _, r in ipairs(lost) do if r == rid[i] then listed = true end end
      if not listed then table.insert(lost, rid[i]) end
    end
  end
end
-- 5: at most one more
local best, best_h, best_s, best_sp = nil, nil, nil, nil
for i = 1, n do
  if not mine[i] and cap[i] > 0 and #holders[i] == 0 then
    local s = score(i, node)
    if best == nil or s > best_s then best, best_h, best_s, best_sp = i, 0, s, 1 end
  end
end
if best == nil then
  local least = minload()
  for i = 1, n do
    local h = #holders[i]
    if not mine[i] and cap[i] > 0 and h < cap[i] then
      local s, sp = score(i, node), spreads(i, node)
      local held = {}
      for _, p in ipairs(holders[i]) do held[p] = true end
      local ok = load[node] == 0
      if ok and sp == 0 then
        -- Holding nothing, but on a host the router already runs on: an idle process
        -- of another host joins it first (at its own next round).
        for _, p in ipairs(live) do
          if p ~= node and not held[p] and load[p] == 0 and spreads(i, p) == 1 then ok = false; break end
        end
      elseif not ok and h < math.min(cap[i], share) and load[node] <= least then
        ok = true
        -- Another least-loaded process goes first: one on a host the router's holders
        -- are not on, then the rendezvous hash.
        for _, p in ipairs(live) do
          if p ~= node and not held[p] and load[p] == least then
            local psp = spreads(i, p)
            if psp > sp or (psp == sp and score(i, p) > s) then ok = false; break end
          end
        end
      end
      if ok then
        local better = best == nil or sp > best_sp
        if not better and sp == best_sp then better = h < best_h or (h == best_h and s > best_s) end
        if better then best, best_h, best_s, best_sp = i, h, s, sp end
      end
    end
  end
end
if best ~= nil then add(best); table.insert(taken, rid[best]) end
local held = {}
for i = 1, n do if mine[i] then table.insert(held, rid[i]) end end
return {held, lost, taken, released}
"""


def max_holders(cap: int, connections_per_process: int) -> int:
    """How many processes may hold a router whose cap is `cap` API sessions."""
    return max(1, cap // max(1, connections_per_process))


@dataclass(frozen=True)
class RoundResult:
    """One round's outcome (router ids): what the process holds now, what it lost while
    running monitors there (hand them over), what it took and what it gave up."""

    held: frozenset[str]
    lost: frozenset[str]
    taken: frozenset[str]
    released: frozenset[str]


class Affinity:
    """The assignment script of one worker process (`node`, its Celery node name)."""

    def __init__(self, client: redis.Redis, node: str, ttl: float) -> None:
        self.redis = client
        self.node = node
        self.ttl_ms = max(1, int(ttl * 1000))
        self._round = client.register_script(ROUND)

    def round(
        self, limits: Mapping[str, int], busy: Iterable[str] = (), held: Iterable[str] = ()
    ) -> RoundResult:
        """One round. `limits`: every known router -> its max holders. `busy`: the routers
        this process runs monitors or a watch on. `held`: what it held after its last round
        (a router among them that is no longer known is given up once idle)."""
        busy = set(busy)
        routers = dict(limits)
        for router_id in set(held) | busy:
            routers.setdefault(router_id, 0)
        order = sorted(routers)
        args: list[str | int] = [self.node, self.ttl_ms, len(order)]
        for router_id in order:
            args += [router_id, routers[router_id], 1 if router_id in busy else 0]
        raw = self._round(
            keys=[keys.AFFINITY_PROCESSES, *(keys.affinity_holders(r) for r in order)], args=args
        )
        held_now, lost, taken, released = ([as_text(x) for x in part] for part in raw)
        return RoundResult(frozenset(held_now), frozenset(lost), frozenset(taken), frozenset(released))

    def wanted(self) -> set[str]:
        """Every router a lease was ever taken on (keys.AFFINITY_ROUTERS)."""
        return {as_text(m) for m in self.redis.smembers(keys.AFFINITY_ROUTERS)}

    def leave(self, routers: Iterable[str]) -> None:
        """Give up every hold and the heartbeat (a clean shutdown): the others take over
        at their next round instead of after the TTL."""
        pipe = self.redis.pipeline(transaction=False)
        for router_id in routers:
            pipe.zrem(keys.affinity_holders(router_id), self.node)
        pipe.zrem(keys.AFFINITY_PROCESSES, self.node)
        pipe.execute()


def holders_of(client: redis.Redis, router_id: str) -> list[str]:
    """The processes that hold a router now (expired holds left out), for status and tests."""
    seconds, micros = client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    return [as_text(m) for m in client.zrangebyscore(keys.affinity_holders(router_id), f"({now_ms}", "+inf")]


def router_limits(settings: Settings | None = None) -> dict[str, int]:
    """Every router to place, id -> max holders: the routers table (max_api_sessions, or
    ROUTER_MAX_API_SESSIONS) and every mikrotik_id customers name without a row."""
    from sqlalchemy import select

    from models import Router
    from tasks.sessions import db
    from tasks.watch_lifecycle import known_routers

    settings = settings or get_settings()
    per_process = settings.router_connections_per_process
    with db() as s:
        caps = {row.id: row.max_api_sessions for row in s.scalars(select(Router))}
        routers = known_routers(s)
    return {
        router_id: max_holders(caps.get(router_id) or settings.router_max_api_sessions, per_process)
        for router_id in routers
    }


class AffinityKeeper:
    """The per-process thread: a round every `interval`, then consume what it holds.

    `consume(queue)` / `cancel(queue)` change what the worker consumes;
    `busy()` names the routers the process runs monitors or watches on; `hand_over(router)`
    makes them hand their sessions over; `limits()` loads the routers (may raise: the last
    list is kept)."""

    def __init__(
        self,
        affinity: Affinity,
        *,
        interval: float,
        refresh: float,
        limits: Callable[[], dict[str, int]],
        busy: Callable[[], set[str]],
        consume: Callable[[str], None],
        cancel: Callable[[str], None],
        hand_over: Callable[[str], None],
        default_holders: int = 1,
    ) -> None:
        self.affinity = affinity
        self.interval = interval
        self.refresh = refresh
        self._limits_source = limits
        self._busy = busy
        self._consume = consume
        self._cancel = cancel
        self._hand_over = hand_over
        self._limits: dict[str, int] = {}
        self._limits_at = -math.inf
        # A router with a lease that the last list did not have (added since): reload the
        # list at once, at most this often, and place it meanwhile with the default cap.
        self.unknown_refresh = max(2.0, 2 * interval)
        self.default_holders = default_holders
        self.held: frozenset[str] = frozenset()
        self.consuming: set[str] = set()
        # Control commands are sent without waiting for a reply: every so often the keeper
        # says again what the worker should consume, so a lost command costs one period.
        self.reassert_every = 10.0
        self._reasserted = time.monotonic()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self) -> RoundResult:
        now = time.monotonic()
        wanted = self.affinity.wanted()
        due = self.refresh if not (wanted - self._limits.keys()) else min(self.refresh, self.unknown_refresh)
        if now - self._limits_at >= due:
            try:
                self._limits = self._limits_source()
                self._limits_at = now
            except Exception as exc:  # PostgreSQL away: keep placing the routers we knew
                log.warning(
                    "affinity: could not load the routers (%s); keeping the last list", type(exc).__name__
                )
                self._limits_at = now - self.refresh + min(self.refresh, 5.0)
        # A router a start just named, not in the routers table: a customer's mikrotik_id
        # the last list did not have yet (the reload above runs at most every few seconds).
        limits = {**dict.fromkeys(wanted, self.default_holders), **self._limits}
        result = self.affinity.round(limits, busy=self._busy(), held=self.held | self.consuming)
        self.held = result.held
        if result.taken or result.released or result.lost:
            log.info(
                "affinity %s: holds %s (took %s, gave up %s, lost %s)",
                self.affinity.node,
                sorted(result.held),
                sorted(result.taken),
                sorted(result.released),
                sorted(result.lost),
            )
        for router_id in sorted(self.consuming - result.held):
            self._cancel(keys.router_queue(router_id))
            self.consuming.discard(router_id)
        for router_id in sorted(result.lost):
            self._hand_over(router_id)
        if time.monotonic() - self._reasserted >= self.reassert_every:
            self._reasserted = time.monotonic()
            self.consuming -= set(result.held)
        for router_id in sorted(result.held - self.consuming):
            self._consume(keys.router_queue(router_id))
            self.consuming.add(router_id)
        return result

    def _lose_everything(self) -> None:
        """Redis unreachable for a whole TTL: our holds are gone and another process may
        hold our routers now. Stop consuming and hand over, so as not to exceed a cap."""
        for router_id in sorted(self.consuming):
            self._cancel(keys.router_queue(router_id))
            self.consuming.discard(router_id)
        for router_id in sorted(self._busy()):
            self._hand_over(router_id)
        self.held = frozenset()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="affinity-keeper", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.affinity.leave(self.held | self.consuming)
        except redis.RedisError as exc:
            log.warning("affinity: holds not given up (they expire): %s", exc)

    def _run(self) -> None:
        ttl = self.affinity.ttl_ms / 1000
        confirmed = time.monotonic()
        while not self._closing.is_set():
            started = time.monotonic()
            try:
                self.round()
                confirmed = started
                took = time.monotonic() - started
                if took > ttl / 3:
                    log.warning("affinity round took %.1fs (the holds last %.1fs)", took, ttl)
            except redis.RedisError as exc:
                log.warning("affinity round failed: %s", exc)
                if time.monotonic() - confirmed >= ttl and (self.held or self.consuming):
                    self._lose_everything()
            except Exception:  # the keeper must outlive any single bad round
                log.exception("affinity round failed")
            self._closing.wait(self.interval)


def from_settings(
    client: redis.Redis,
    node: str,
    *,
    busy: Callable[[], set[str]],
    consume: Callable[[str], None],
    cancel: Callable[[str], None],
    hand_over: Callable[[str], None],
    settings: Settings | None = None,
) -> AffinityKeeper:
    """A keeper for this process with the settings' TTL, interval and refresh."""
    settings = settings or get_settings()
    return AffinityKeeper(
        Affinity(client, node, settings.monitor_lease_ttl),
        interval=settings.affinity_interval,
        refresh=settings.affinity_refresh,
        limits=lambda: router_limits(settings),
        busy=busy,
        consume=consume,
        cancel=cancel,
        hand_over=hand_over,
        default_holders=max_holders(
            settings.router_max_api_sessions, settings.router_connections_per_process
        ),
    )
