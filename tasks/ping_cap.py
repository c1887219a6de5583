"""PING_MAX_PER_ROUTER across every worker: a router's running pings in one Redis zset.

Each pinging monitor holds a member (its lease token) scored by its expiry on the Redis
clock, renews it from its loop, and removes it at its end; a monitor that died without
removing it frees its place when the score passes. One script takes or renews a place:
it purges the expired members first, so a crashed worker's pings do not count against
the cap for longer than one TTL (docs/scaling.md, The monitor's ping).
"""

from __future__ import annotations

import logging
import time

import redis

from tasks import keys

log = logging.getLogger(__name__)

# KEYS[1] the router's zset; ARGV: token, cap, ttl ms. 1 = held (taken now or renewed),
# 0 = the cap is reached. The key expires with its last member.
_TAKE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""


class PingSlot:
    """One monitor's place among its router's pings (or its attempt to get one)."""

    def __init__(self, client: redis.Redis, router_id: str, token: str, cap: int, ttl: float) -> None:
        self._client = client
        self._key = keys.ping_slots(router_id)
        self._token = token
        self._cap = cap
        self._ttl_ms = max(1, int(ttl * 1000))
        # Renewed well within the TTL, but never more than every few seconds per monitor.
        self.renew_every = max(0.5, min(5.0, ttl / 3))
        self._take = client.register_script(_TAKE)
        self.held = False
        self._next_renewal = 0.0

    def take(self) -> bool:
        """Take (or renew) the place; False when the router's cap is reached. Redis
        trouble keeps what we had: a renewal that fails lets the place expire, and a
        monitor that has none goes on without ping rather than failing."""
        self._next_renewal = time.monotonic() + self.renew_every
        try:
            self.held = bool(self._take(keys=[self._key], args=[self._token, self._cap, self._ttl_ms]))
        except redis.RedisError as exc:
            log.warning("ping place of %s not taken or renewed: %s", self._token, exc)
        return self.held

    def due(self, now: float) -> bool:
        """Time to renew (or to try again for a place the cap refused)?"""
        return now >= self._next_renewal

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            self._client.zrem(self._key, self._token)
        except redis.RedisError as exc:
            log.warning("ping place of %s not released (it expires): %s", self._token, exc)


def pings_running(client: redis.Redis, router_id: str) -> int:
    """The router's places held now (expired ones left out)."""
    seconds, micros = client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    return int(client.zcount(keys.ping_slots(router_id), f"({now_ms}", "+inf"))
