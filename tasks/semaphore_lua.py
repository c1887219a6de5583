"""Lua for the monitor semaphore (tasks/semaphore.py is the only user).

Kept as Python strings rather than .lua files so a non-editable install cannot
lose them. Time always comes from Redis `TIME` inside the script: client clocks
never decide whether a lease is alive. Scores are absolute expiry times in ms;
a member whose score is <= now is expired.

Layout (names come from tasks/keys.py, passed as KEYS or stored in the lease table):
  global zset   member = token, score = expiry ms
  router zset   same, per router
  owner hash    {token, fence, router, claimant}, PEXPIRE = lease TTL (single flight per
                customer); `claimant` names the one monitor run that took the lease
                (absent while it is a reservation waiting in the queue)
  fence counter INCR per fresh acquire, never below TIME in us (so it survives a flush
                and a failover to a replica that missed the last INCRs)
  lease table   hash token -> JSON {customer, router, ok = owner key, rk = router zset key}
"""

from __future__ import annotations

_PRELUDE = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Remove one holder everywhere; its owner key only while it still names this token.
local function drop(global, leases, token)
  redis.call('ZREM', global, token)
  local info = redis.call('HGET', leases, token)
  if info then
    local l = cjson.decode(info)
    redis.call('ZREM', l.rk, token)
    if redis.call('HGET', l.ok, 'token') == token then
      redis.call('DEL', l.ok)
    end
    redis.call('HDEL', leases, token)
  end
end

local function trim(global, leases, now)
  local expired = redis.call('ZRANGEBYSCORE', global, '-inf', now)
  for _, token in ipairs(expired) do
    drop(global, leases, token)
  end
  return expired
end
"""

# KEYS: global zset, router zset, owner hash, fence counter, lease table, routers set
#       (every router a lease was ever taken on: router affinity places them at once)
# ARGV: token, customer_id, router_id, global_limit, router_limit (0 = none), ttl_ms,
#       replace_token ('' = none: evict that owner first, for takeover),
#       claimant ('' = a reservation; else the monitor run taking the lease for itself),
#       memory_reserve (share of maxmemory that must stay free, e.g. 0.05)
# Reply: {1, fence} acquired | {2, fence} refreshed (same token) |
#        {-1, scope, cap, in_use} full | {-2, owner_token} customer owned by another token |
#        {-3, claimant} the token's lease is already claimed by another run |
#        {-4, used_memory, maxmemory} Redis is (nearly) out of memory: no lease
ACQUIRE = (
    _PRELUDE
    + r"""
local g, rk, ok, fk, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, customer, router = ARGV[1], ARGV[2], ARGV[3]
local glimit, rlimit, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local replace, claimant = ARGV[7], ARGV[8]
-- A Redis at maxmemory (noeviction) refuses the monitor's publishes, its renewals'
-- siblings and the launch itself, but NOT this script: its first write (a ZREM of the
-- trim) is not a "denyoom" command, and once a script has written Redis lets it write
-- on. So the script checks the memory itself, first, and keeps a reserve: the monitors
-- already running may use the last few percent, a new one gets no lease it cannot use.
local info = redis.call('INFO', 'memory')
local maxmemory = tonumber(string.match(info, 'maxmemory:(%d+)')) or 0
if maxmemory > 0 then
  local used = tonumber(string.match(info, 'used_memory:(%d+)')) or 0
  if used >= maxmemory * (1 - tonumber(ARGV[9])) then
    return {-4, used, maxmemory}
  end
end
local now = now_ms()
trim(g, leases, now)
-- members whose lease-table entry was lost (e.g. deleted by hand) still expire here
redis.call('ZREMRANGEBYSCORE', rk, '-inf', now)

local owner = redis.call('HGET', ok, 'token')
if owner and replace ~= '' and owner == replace and owner ~= token then
  drop(g, leases, owner)
  redis.call('ZREM', rk, owner)  -- in case its lease-table entry was lost
  redis.call('DEL', ok)
  owner = false
end
if owner and owner ~= token then
  return {-2, owner}
end

local expiry = now + ttl
if owner == token and redis.call('ZSCORE', g, token) then
  -- A claimed lease belongs to one run: a second delivery of the same message (same
  -- token) must not become a second producer under the same fence.
  local holder = redis.call('HGET', ok, 'claimant')
  if claimant ~= '' then
    if holder and holder ~= claimant then
      return {-3, holder}
    end
    redis.call('HSET', ok, 'claimant', claimant)
  end
  redis.call('ZADD', g, expiry, token)
  redis.call('ZADD', rk, expiry, token)
  redis.call('PEXPIRE', ok, ttl)
  return {2, tonumber(redis.call('HGET', ok, 'fence'))}
end

-- Fresh acquire (a token holding a slot whose owner key vanished lands here too,
-- so it gets a new fence and its old one stays fenced out).
local held = redis.call('ZSCORE', g, token)
if not held then
  local used = redis.call('ZCARD', g)
  if used >= glimit then
    return {-1, 'global', glimit, used}
  end
  if rlimit > 0 then
    local rused = redis.call('ZCARD', rk)
    if rused >= rlimit then
      return {-1, 'router', rlimit, rused}
    end
  end
end
-- A missing counter means Redis lost its data (flush, restart without persistence):
-- restarting at 1 would hand a new owner the fence an old, still running producer
-- holds. Seed it from the server clock in microseconds instead (as a string: Lua
-- would print the number in exponent form), above every fence given out before.
if redis.call('EXISTS', fk) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', fk, t[1] .. string.format('%06d', tonumber(t[2])))
end
local fence = redis.call('INCR', fk)
-- Never below the server clock in microseconds: after a Sentinel failover the promoted
-- replica may have missed the last INCRs (replication is asynchronous), and counting on
-- from its older value would hand out fences already given. The clock has moved on by
-- more than the failover took, so fences keep growing (docs/architecture.md, Redis failover).
local t = redis.call('TIME')
local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
if floor > fence then
  fence = floor
  redis.call('SET', fk, string.format('%.0f', fence))
end
redis.call('ZADD', g, expiry, token)
redis.call('ZADD', rk, expiry, token)
redis.call('DEL', ok)
redis.call('HSET', ok, 'token', token, 'fence', string.format('%.0f', fence), 'router', router)
if claimant ~= '' then
  redis.call('HSET', ok, 'claimant', claimant)
end
redis.call('PEXPIRE', ok, ttl)
redis.call('HSET', leases, token,
  cjson.encode({customer = customer, router = router, ok = ok, rk = rk}))
if KEYS[6] and router ~= '' then
  redis.call('SADD', KEYS[6], router)
end
return {1, fence}
"""
)

# KEYS: global zset, then (owner hash, router zset) per lease, in lease order
# ARGV: ttl_ms, then (token, claimant) per lease
# Reply: list of 1 (renewed) / 0 (lease lost: expired, released, taken over, claimed by
#        another run, or flushed)
# allow-oom: a renewal only moves scores and TTLs of existing keys (no growth), and a
# Redis at maxmemory must not turn into every monitor losing its lease after one TTL:
# the monitors keep their slots, report `offline` and resume when memory is freed.
# (The shebang line must come first: Redis 7 reads the flags from it.)
RENEW_MANY = (
    "#!lua flags=allow-oom\n"
    + _PRELUDE
    + r"""
local g = KEYS[1]
local ttl = tonumber(ARGV[1])
local now = now_ms()
local expiry = now + ttl
local out = {}
for i = 1, (#ARGV - 1) / 2 do
  local token, claimant = ARGV[2 * i], ARGV[2 * i + 1]
  local ok, rk = KEYS[2 * i], KEYS[2 * i + 1]
  local score = redis.call('ZSCORE', g, token)
  local owner = redis.call('HMGET', ok, 'token', 'claimant')
  if score and tonumber(score) > now and owner[1] == token and owner[2] == claimant then
    redis.call('ZADD', g, 'XX', expiry, token)
    redis.call('ZADD', rk, expiry, token)
    redis.call('PEXPIRE', ok, ttl)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""
)

# KEYS: global zset, router zset, owner hash, lease table
# ARGV: token, claimant ('' = whoever holds it: start's undo, stop before start)
# Reply: 1 if the token still held its slot or the customer, else 0 (also when the lease
#        is claimed by another run: a refused second delivery must not free the first's)
RELEASE = r"""
local token, claimant = ARGV[1], ARGV[2]
if claimant ~= '' then
  local owner = redis.call('HMGET', KEYS[3], 'token', 'claimant')
  if owner[1] == token and owner[2] and owner[2] ~= claimant then
    return 0
  end
end
local held = redis.call('ZREM', KEYS[1], token)
redis.call('ZREM', KEYS[2], token)
if redis.call('HGET', KEYS[3], 'token') == token then
  redis.call('DEL', KEYS[3])
  held = 1
end
redis.call('HDEL', KEYS[4], token)
return held
"""

# KEYS: global zset, lease table ; Reply: tokens whose leases expired and were freed
FREE_EXPIRED = (
    _PRELUDE
    + r"""
return trim(KEYS[1], KEYS[2], now_ms())
"""
)

# KEYS: global zset, lease table
# Reply: {token, remaining_ms, lease-table JSON or ''} per live holder
HOLDERS = (
    _PRELUDE
    + r"""
local now = now_ms()
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  local info = redis.call('HGET', KEYS[2], live[i]) or ''
  out[#out + 1] = {live[i], tonumber(live[i + 1]) - now, info}
end
return out
"""
)

# KEYS: a slots zset ; Reply: number of unexpired members
IN_USE = (
    _PRELUDE
    + r"""
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms(), '+inf')
"""
)

# Reply: the server clock in ms (what every deadline of the engine is measured by)
NOW = (
    _PRELUDE
    + r"""
return now_ms()
"""
)
