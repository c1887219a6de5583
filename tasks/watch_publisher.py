"""The router watch's fenced publish: its entries, its view, its session-up notices.

One Lua script call per batch, fenced like a monitor's samples (tasks/publisher.py):
it checks the router's watch owner key (token AND fence) first, so a watch that lost
its lease cannot write. For each entry it XADDs

- to the combined stream (`MAXLEN ~ STREAM_MAXLEN`), letting Redis pick the id: a
  top frame's summary (the frame without its customer list) or a session event;
- to the router's stream (keys.router_stream, `MINID ~` a few minutes: ROUTER_RETENTION)
  with the SAME id: the whole top frame, or the same session event.

So every router entry has one id in both streams, taken from the combined stream's
sequence, and one resume cursor stays valid across all of them (web/relay.py reads the
combined stream only and fetches a top frame's list from the router's stream by id).
The combined stream gains one small entry per router per cycle (a few hundred bytes;
README, Redis memory), never a frame's list.

With a view the script also writes keys.router_view: a hash {json, at (Redis ms), id
(the cycle's frame)} that expires unless renewed (VIEW_TTL), so a router whose watch
is gone shows no stale view for long. Customer ids to wake are PUBLISHed on
keys.SESSION_UP_CHANNEL (tasks/leases.py hands them to their monitors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from common.text import as_text
from settings import Settings, get_settings
from tasks import keys
from tasks.message import MessageError
from tasks.publisher import CLOCK_LUA

# How long a router's stream keeps its entries (top frames every cycle, session events):
# long enough to resume a dashboard after a short outage, short enough that a frame of
# 50 customers every 2 s per router stays a few megabytes.
ROUTER_RETENTION = 300.0

# KEYS: owner hash, combined stream, router stream, view hash, session-up channel
# ARGV: token, fence, combined_maxlen, retention_ms, view_ttl_ms, view json ('' = none),
#       entry count, then per entry: 2n, n combined field/values, 2m, m router field/values,
#       then customer ids to PUBLISH on the channel
# Reply: the entries' ids, or false when fenced out
PUBLISH = (
    CLOCK_LUA
    + r"""
local owner = redis.call('HMGET', KEYS[1], 'token', 'fence')
if owner[1] ~= ARGV[1] or owner[2] ~= ARGV[2] then
  return false
end
local now = redis_now_ms()
local stamp = rfc3339(now)
local maxlen, retention = ARGV[3], tonumber(ARGV[4])
local minid = string.format('%d', now - retention)
local ids = {}
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  local parts = {}
  for p = 1, 2 do
    local n = tonumber(ARGV[i])
    local fields = {}
    for j = i + 1, i + n, 2 do
      fields[#fields + 1] = ARGV[j]
      fields[#fields + 1] = ARGV[j] == 'timestamp' and stamp or ARGV[j + 1]
    end
    parts[p] = fields
    i = i + n + 1
  end
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(parts[1]))
  -- Same id in the router's stream; only if its own last id is above (the combined
  -- stream was deleted while the clock stepped back) does Redis pick one.
  local ok = redis.pcall('XADD', KEYS[3], 'MINID', '~', minid, id, unpack(parts[2]))
  if type(ok) == 'table' and ok.err then
    redis.call('XADD', KEYS[3], 'MINID', '~', minid, '*', unpack(parts[2]))
  end
  ids[#ids + 1] = id
end
if #ids > 0 then
  redis.call('PEXPIRE', KEYS[3], retention)
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[4], 'json', ARGV[6], 'at', now, 'id', ids[#ids] or '')
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
for j = i, #ARGV do
  redis.call('PUBLISH', KEYS[5], ARGV[j])
end
return ids
"""
)


def view_ttl(settings: Settings) -> float:
    """How long a router's view outlives its last cycle: a watch restarting (the lease
    TTL, then a reconcile pass) still shows the last view, marked by its age."""
    return max(60.0, 10 * settings.router_watch_interval, 2 * settings.monitor_lease_ttl)


Entry = tuple[Mapping[str, str], Mapping[str, str]]  # (combined stream fields, router stream fields)


class WatchPublisher:
    """Fenced writes of one router's watch (thread-safe: redis-py pools connections)."""

    def __init__(self, client: redis.Redis, router_id: str, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        self.redis = client
        self.router_id = router_id
        self.combined_maxlen = settings.stream_maxlen
        self.retention_ms = int(ROUTER_RETENTION * 1000)
        self.view_ttl_ms = int(view_ttl(settings) * 1000)
        self._script = client.register_script(PUBLISH)

    def publish(
        self,
        entries: Sequence[Entry],
        *,
        token: str,
        fence: int,
        view: str = "",
        wake: Sequence[str] = (),
    ) -> list[str] | None:
        """Write `entries` (each with the same id in both streams), the view (JSON text, ''
        for none) and the session-up notices; their ids, or None when fenced out."""
        args: list[str] = [
            token,
            str(int(fence)),
            str(self.combined_maxlen),
            str(self.retention_ms),
            str(self.view_ttl_ms),
            view,
            str(len(entries)),
        ]
        for combined, routed in entries:
            for fields in (combined, routed):
                args.append(str(2 * len(fields)))
                for name, value in fields.items():
                    if not isinstance(value, str):
                        raise MessageError(f"{name}: stream fields must be strings (use tasks.message)")
                    args += (name, value)
        args.extend(wake)
        script_keys = [
            keys.watch_owner(self.router_id),
            keys.COMBINED_STREAM,
            keys.router_stream(self.router_id),
            keys.router_view(self.router_id),
            keys.SESSION_UP_CHANNEL,
        ]
        reply: Any = self._script(keys=script_keys, args=args)
        if reply is None or reply is False:
            return None
        return [as_text(x) for x in reply]
