"""Fenced stream publishing: a monitor that lost its lease cannot append.

One Lua script checks the customer's owner key (token AND fence) and, only if it
still matches, XADDs the same fields to the per-customer stream and to the
combined stream. Atomic, so no entry can slip in between a takeover and the
check, and both streams always carry the same entries.

Retention:
- per-customer stream `mikrotik:traffic:customer:{id}`: MINID ~ (now - retention),
  time-based because the guarantee the relay gives ("resume within the last
  CUSTOMER_STREAM_RETENTION seconds") is a time, and status events or a changed
  interval would make a count mean a different time. The stream also gets
  PEXPIRE = retention on every write, so a stopped customer's stream disappears
  once nothing in it is resumable (MINID only trims on writes).
- combined stream `mikrotik:traffic:customers`: MAXLEN ~ STREAM_MAXLEN, a memory
  bound over all customers (it is only for live "all customers" views).
Both use `~` so Redis trims whole macro nodes (cheap). Ids come from the server: the
combined stream picks one and the customer stream reuses it, so an entry has the same
id in both and a client's last id is a valid cursor for either.

Status events: `publish` (fenced) for everything the owner emits while it holds
the lease. `publish_status` is UNFENCED and refuses traffic: it exists for the
terminal `stopped` event written after release (or after the lease was lost) and
for the reconciler, which owns no lease. Its entry still carries the session id
and fence so readers can tell which attempt it speaks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import redis

from settings import Settings, get_settings
from tasks import keys
from tasks.message import TRAFFIC, MessageError

# KEYS: owner hash, customer stream, combined stream
# ARGV: token ('' = unfenced), fence, retention_ms, combined_maxlen, field, value, ...
# Reply: {customer_id, combined_id}, or false when fenced out
PUBLISH = r"""
if ARGV[1] ~= '' then
  local owner = redis.call('HMGET', KEYS[1], 'token', 'fence')
  if owner[1] ~= ARGV[1] or owner[2] ~= ARGV[2] then
    return false
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retention = tonumber(ARGV[3])
local minid = string.format('%d', now - retention)
local combined_id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
-- Same id in the customer stream, so one cursor is valid in both. It is always above the
-- customer stream's last id (every customer entry is also in the combined stream) unless
-- the combined stream was deleted and the clock stepped back: then let Redis pick.
local customer_id = redis.pcall('XADD', KEYS[2], 'MINID', '~', minid, combined_id, unpack(ARGV, 5))
if type(customer_id) == 'table' and customer_id.err then
  customer_id = redis.call('XADD', KEYS[2], 'MINID', '~', minid, '*', unpack(ARGV, 5))
end
redis.call('PEXPIRE', KEYS[2], retention)
return {customer_id, combined_id}
"""


class PublishedIds(NamedTuple):
    """Stream ids of one entry. Equal in both streams (one resume cursor fits both), except
    after the combined stream was deleted while the clock stepped back."""

    customer: str
    combined: str


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Publisher:
    """Appends message entries (tasks.message) to the customer and combined streams."""

    def __init__(self, client: redis.Redis, *, combined_maxlen: int, retention_seconds: int) -> None:
        if combined_maxlen < 1 or retention_seconds < 1:
            raise ValueError("combined_maxlen and retention_seconds must be positive")
        self.redis = client
        self.combined_maxlen = combined_maxlen
        self.retention_ms = int(retention_seconds * 1000)
        self._publish = client.register_script(PUBLISH)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings | None = None) -> Publisher:
        settings = settings or get_settings()
        return cls(
            client,
            combined_maxlen=settings.stream_maxlen,
            retention_seconds=settings.customer_stream_retention,
        )

    def publish(self, entry: Mapping[str, str], *, token: str, fence: int) -> PublishedIds | None:
        """Fenced append; None when `token`/`fence` no longer own the customer (stop now)."""
        if not token:
            raise ValueError("a fenced publish needs the lease token")
        return self._run(entry, token, str(int(fence)))

    def publish_status(self, entry: Mapping[str, str]) -> PublishedIds:
        """Unfenced append of a status event (after release, or by the reconciler)."""
        if entry.get("type") == TRAFFIC:
            raise MessageError("type: traffic samples must go through the fenced publish")
        ids = self._run(entry, "", "")
        assert ids is not None  # unfenced writes cannot be refused
        return ids

    def _run(self, entry: Mapping[str, str], token: str, fence: str) -> PublishedIds | None:
        customer_id = entry.get("customer_id")
        if not customer_id:
            raise MessageError("customer_id: required to choose the stream")
        if "type" not in entry:
            raise MessageError("type: required field is missing")
        args: list[str] = [token, fence, str(self.retention_ms), str(self.combined_maxlen)]
        for name, value in entry.items():
            if not isinstance(value, str):
                raise MessageError(f"{name}: stream fields must be strings (use tasks.message)")
            args.append(name)
            args.append(value)
        reply = self._publish(
            keys=[keys.customer_owner(customer_id), keys.customer_stream(customer_id),
                  keys.COMBINED_STREAM],
            args=args,
        )
        if not reply:
            return None
        return PublishedIds(customer=_text(reply[0]), combined=_text(reply[1]))
