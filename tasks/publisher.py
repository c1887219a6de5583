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

Batching: `BatchPublisher` (one per worker process) gives many monitor threads the
same fenced publish through one thread that sends whatever is queued as ONE pipeline
of script calls; fencing stays per call (see the class). A call may carry several
entries of one customer (`publish_many`: a monitor's ping replies with its sample):
appended in order, all or none, fenced together.

Status events: `publish` (fenced) for everything the owner emits while it holds
the lease. `publish_status` is UNFENCED and refuses traffic: it exists for the
terminal `stopped` event written after release (or after the lease was lost) and
for the reconciler, which owns no lease. Its entry still carries the session id
and fence so readers can tell which attempt it speaks for.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import NamedTuple

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common import redis_clients
from common.text import as_text
from settings import Settings, get_settings
from tasks import keys
from tasks.message import TRAFFIC, MessageError

log = logging.getLogger(__name__)

# Lua: the Redis clock in ms, and a moment in it as RFC 3339 with ms (UTC). An entry's
# `timestamp` field is rewritten with it, the clock its stream id comes from: workers on
# hosts whose clocks are apart still write times that agree with each other and with
# the ids readers resume from. (tasks.watch's publish script uses it too.)
CLOCK_LUA = r"""
local function redis_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function rfc3339(now)
  -- Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted).
  local secs = math.floor(now / 1000)
  local days = math.floor(secs / 86400)
  local sod = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor(
    (doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
    math.floor(sod / 3600), math.floor(sod % 3600 / 60), sod % 60, now % 1000)
end
"""

# KEYS: owner hash, customer stream, combined stream
# ARGV: token ('' = unfenced), fence, retention_ms, combined_maxlen, then one group per
#       entry: its count of args n, then n args (field, value, ...)
# Reply: {customer_id, combined_id, ...} (a pair per entry, in order), or false when fenced out
#
# Holes: a fenced publish keeps the last `seq` it appended in the owner hash. When the
# next entry's seq is not the one after it, the entries in between are not in the stream
# (a failover lost what the replica had not received; a publish failed or timed out),
# and a `gap` entry saying so is appended first, so that every reader, live or resuming
# by id, is told instead of finding the seqs missing (docs/architecture.md, Redis failover).
PUBLISH = (
    CLOCK_LUA
    + r"""
local stored_seq = nil
if ARGV[1] ~= '' then
  local owner = redis.call('HMGET', KEYS[1], 'token', 'fence', 'seq')
  if owner[1] ~= ARGV[1] or owner[2] ~= ARGV[2] then
    return false
  end
  stored_seq = tonumber(owner[3])
end
local now = redis_now_ms()
local stamp = nil
local retention = tonumber(ARGV[3])
local minid = string.format('%d', now - retention)
local out = {}

local function append(fields)
  local combined_id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
  -- Same id in the customer stream, so one cursor is valid in both. It is always above the
  -- customer stream's last id (every customer entry is also in the combined stream) unless
  -- the combined stream was deleted and the clock stepped back: then let Redis pick.
  local customer_id = redis.pcall('XADD', KEYS[2], 'MINID', '~', minid, combined_id, unpack(fields))
  if type(customer_id) == 'table' and customer_id.err then
    customer_id = redis.call('XADD', KEYS[2], 'MINID', '~', minid, '*', unpack(fields))
  end
  return customer_id, combined_id
end

local last_seq = nil
local i = 5
while i <= #ARGV do
  local first, last = i + 1, i + tonumber(ARGV[i])
  local seq, customer, session = nil, '', ''
  for j = first, last - 1, 2 do
    local name = ARGV[j]
    if name == 'timestamp' then
      stamp = stamp or rfc3339(now)
      ARGV[j + 1] = stamp
    elseif name == 'seq' then
      seq = tonumber(ARGV[j + 1])
    elseif name == 'customer_id' then
      customer = ARGV[j + 1]
    elseif name == 'session_id' then
      session = ARGV[j + 1]
    end
  end
  if seq then
    local expected = (last_seq or stored_seq)
    if expected and seq > expected + 1 then
      local before = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
      local from = before[1] and before[1][1] or '0-0'
      local gap = {'type', 'gap', 'customer_id', customer, 'session_id', session, 'fence', ARGV[2],
        'seq_from', string.format('%d', expected + 1), 'seq_to', string.format('%d', seq - 1),
        'lost', string.format('%d', seq - 1 - expected), 'from', from,
        'timestamp', stamp or rfc3339(now)}
      append(gap)  -- not in the reply: that is a pair per entry the caller gave
    end
    last_seq = seq
  end
  local customer_id, combined_id = append({unpack(ARGV, first, last)})
  out[#out + 1] = customer_id
  out[#out + 1] = combined_id
  i = last + 1
end
if last_seq and ARGV[1] ~= '' and (stored_seq == nil or last_seq > stored_seq) then
  redis.call('HSET', KEYS[1], 'seq', string.format('%d', last_seq))
end
redis.call('PEXPIRE', KEYS[2], retention)
return out
"""
)


class PublishedIds(NamedTuple):
    """Stream ids of one entry. Equal in both streams (one resume cursor fits both), except
    after the combined stream was deleted while the clock stepped back."""

    customer: str
    combined: str


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
        ids = self.publish_many([entry], token=token, fence=fence)
        return None if ids is None else ids[0]

    def publish_many(
        self, entries: Sequence[Mapping[str, str]], *, token: str, fence: int
    ) -> list[PublishedIds] | None:
        """Fenced append of several entries of ONE customer, in order, in one script call:
        all of them or (fenced out: None) none."""
        if not token:
            raise ValueError("a fenced publish needs the lease token")
        script_keys, args = self._prepare(entries, token, str(int(fence)))
        return _ids(self._publish(keys=script_keys, args=args))

    def publish_status(self, entry: Mapping[str, str]) -> PublishedIds:
        """Unfenced append of a status event (after release, or by the reconciler)."""
        if entry.get("type") == TRAFFIC:
            raise MessageError("type: traffic samples must go through the fenced publish")
        ids = self._run(entry, "", "")
        assert ids is not None  # unfenced writes cannot be refused
        return ids

    def _run(self, entry: Mapping[str, str], token: str, fence: str) -> PublishedIds | None:
        script_keys, args = self._prepare([entry], token, fence)
        ids = _ids(self._publish(keys=script_keys, args=args))
        return None if ids is None else ids[0]

    def _prepare(
        self, entries: Sequence[Mapping[str, str]], token: str, fence: str
    ) -> tuple[list[str], list[str]]:
        """Validate `entries` (one customer's) and build the script's KEYS and ARGV
        (shared with BatchPublisher)."""
        if not entries:
            raise ValueError("nothing to publish")
        customer_id = entries[0].get("customer_id")
        if not customer_id:
            raise MessageError("customer_id: required to choose the stream")
        args: list[str] = [token, fence, str(self.retention_ms), str(self.combined_maxlen)]
        for entry in entries:
            if entry.get("customer_id") != customer_id:
                raise MessageError("customer_id: entries published together must share their customer")
            if "type" not in entry:
                raise MessageError("type: required field is missing")
            args.append(str(2 * len(entry)))
            for name, value in entry.items():
                if not isinstance(value, str):
                    raise MessageError(f"{name}: stream fields must be strings (use tasks.message)")
                args.append(name)
                args.append(value)
        script_keys = [
            keys.customer_owner(customer_id),
            keys.customer_stream(customer_id),
            keys.COMBINED_STREAM,
        ]
        return script_keys, args


def _ids(reply: object) -> list[PublishedIds] | None:
    """The script's reply: [customer stream id, combined stream id, ...] (a pair per entry),
    or nil when fenced out."""
    if not isinstance(reply, list | tuple) or not reply:
        return None
    return [PublishedIds(customer=as_text(c), combined=as_text(m)) for c, m in zip(reply[::2], reply[1::2])]


# -- batching -------------------------------------------------------------------------------


class _Item(NamedTuple):
    """One queued publish (None in the queue tells the thread to stop)."""

    keys: list[str]  # the script's KEYS
    args: list[str]  # ... and ARGV
    pending: PendingPublish  # its outcome; never sent after its deadline (the caller gave up)

    @property
    def future(self) -> Future[list[PublishedIds] | None]:
        return self.pending._future


# Defaults of the worker's batch publisher: the socket timeout matches the monitors' pool.
BATCH_MAX = 500
BATCH_SOCKET_TIMEOUT = 5.0
# How long a caller waits for its result: one batch in flight ahead of its own, which
# times out after BATCH_SOCKET_TIMEOUT, must not make it give up; a caller whose entry
# was not sent yet when it gives up withdraws it (it is never sent).
BATCH_WAIT_TIMEOUT = BATCH_SOCKET_TIMEOUT + 1.0


class PendingPublish:
    """A publish handed to the batch thread (`BatchPublisher.submit_many`).

    `result()` gives what `BatchPublisher.publish_many` would have: ids, None when fenced
    out, or the Redis error; redis.TimeoutError once `wait_timeout` has passed since it
    was submitted ("withdrawn, never sent" when the thread had not sent it, "may still
    be applied" when it had). Waiting is only needed for an outcome not yet known:
    `done()` tells, and `on_done` is called when the thread has settled it.

    The batch thread calls `_settled` itself rather than through the future's done
    callbacks: a callback bound to this object would make it and its future a reference
    cycle, one a sample, left for the cyclic garbage collector (whose full passes over a
    1,000-thread worker stall every monitor for a few hundred ms).
    """

    __slots__ = ("_future", "_on_done", "deadline", "settled_at", "wait_timeout")

    def __init__(
        self,
        future: Future[list[PublishedIds] | None],
        deadline: float,
        wait_timeout: float,
        on_done: Callable[[PendingPublish], None] | None,
    ) -> None:
        self._future = future
        self._on_done = on_done
        self.deadline = deadline
        self.wait_timeout = wait_timeout
        # When the thread settled it (monotonic; stamped just after the outcome is visible
        # to `done()` and `result()`, before `on_done` runs): the publish's latency.
        self.settled_at: float | None = None

    def done(self) -> bool:
        return self._future.done()

    @property
    def fenced_out(self) -> bool:
        """Known now, and refused by the fence (the token no longer owns the customer)."""
        answered, ids = self._answer()
        return answered and ids is None

    @property
    def landed(self) -> bool:
        """Known now, and appended."""
        answered, ids = self._answer()
        return answered and ids is not None

    def _answer(self) -> tuple[bool, list[PublishedIds] | None]:
        """(True, the script's ids or None) once Redis answered; (False, None) while the
        publish is out, withdrawn, or failed."""
        future = self._future
        if future.done() and not future.cancelled() and future.exception() is None:
            return True, future.result()
        return False, None

    def result(self) -> list[PublishedIds] | None:
        """The outcome, waiting for it until the deadline at most (see the class)."""
        try:
            return self._future.result(max(0.0, self.deadline - time.monotonic()))
        except FutureTimeout:
            pass
        except CancelledError:
            raise self._withdrawn() from None
        if self._future.cancel():
            raise self._withdrawn()
        try:
            return self._future.result(0)  # finished just now
        except FutureTimeout:
            raise redis.TimeoutError(
                f"no publish reply within {self.wait_timeout:g}s (it may still be applied)"
            ) from None

    def _withdrawn(self) -> redis.TimeoutError:
        return redis.TimeoutError(f"publish not sent within {self.wait_timeout:g}s (withdrawn, never sent)")

    def _settled(self) -> None:
        """Called by whoever settled the future (the batch thread; `close` for what it
        never took), right after it."""
        self.settled_at = time.monotonic()
        if self._on_done is not None:
            self._on_done(self)


class BatchPublisher:
    """Fenced publishing for many threads in few round trips.

    Callers (the monitor threads of one worker process) hand their entry to ONE
    publisher thread and wait for their own result (`publish_many`), or take it later
    (`submit_many`: a monitor's samples, whose outcome it looks at before its next
    publish, so a sample costs it no wake-up of its own). The thread wakes on the first
    queued entry (no polling), takes whatever else is queued (up to `max_batch`) and
    sends one fenced-publish script call per entry in ONE pipeline (no MULTI: each
    call is still its own atomic script, fenced on its own owner key, so a stale
    token in a batch is refused while the others land). Each caller then gets exactly
    what `Publisher.publish` would have given it: its ids, None when fenced out, or
    the Redis error (a connection error fails every entry of that batch; a script
    error only its own entry). The thread survives any error and keeps serving.

    Under load this turns ~1,000 threads each waiting for a pool connection and a
    round trip into a few pipelines a second on one connection of its own.
    """

    def __init__(
        self,
        publisher: Publisher,
        client: redis.Redis | None = None,
        *,
        max_batch: int = BATCH_MAX,
        wait_timeout: float = BATCH_WAIT_TIMEOUT,
        owns_client: bool = False,
    ) -> None:
        """`client`: the connection the thread sends on (default: the publisher's);
        `owns_client`: close it in `close()`."""
        if max_batch < 1 or wait_timeout <= 0:
            raise ValueError("max_batch and wait_timeout must be positive")
        self.publisher = publisher
        self.redis = client or publisher.redis
        self.max_batch = max_batch
        self.wait_timeout = wait_timeout
        self._owns_client = owns_client
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        # Counters for logs and benchmarks (written by the thread only).
        self.batches = 0
        self.entries = 0
        self.largest_batch = 0

    @classmethod
    def from_settings(cls, publisher: Publisher, settings: Settings | None = None) -> BatchPublisher:
        """With a connection of its own, so a batch never waits behind the monitors' pool."""
        settings = settings or get_settings()
        return cls(publisher, batch_client(settings), owns_client=True)

    # -- callers ------------------------------------------------------------------------

    def publish(self, entry: Mapping[str, str], *, token: str, fence: int) -> PublishedIds | None:
        """Same contract as `Publisher.publish`: ids, None when fenced out, or a RedisError
        (redis.TimeoutError when no answer came within `wait_timeout`)."""
        ids = self.publish_many([entry], token=token, fence=fence)
        return None if ids is None else ids[0]

    def publish_many(
        self, entries: Sequence[Mapping[str, str]], *, token: str, fence: int
    ) -> list[PublishedIds] | None:
        """`Publisher.publish_many` through the thread: one item of the batch, one script
        call, one wait, however many entries."""
        return self.submit_many(entries, token=token, fence=fence).result()

    def submit_many(
        self,
        entries: Sequence[Mapping[str, str]],
        *,
        token: str,
        fence: int,
        on_done: Callable[[PendingPublish], None] | None = None,
    ) -> PendingPublish:
        """`publish_many` without waiting: hands the entries to the thread and returns at
        once. `on_done` runs when the outcome is known, on the publisher thread (or on the
        thread that withdraws or fails it): it must be quick and must not publish. The
        entries are validated here, in the caller's thread, like `publish_many`'s."""
        if not token:
            raise ValueError("a fenced publish needs the lease token")
        script_keys, args = self.publisher._prepare(entries, token, str(int(fence)))
        future: Future[list[PublishedIds] | None] = Future()
        pending = PendingPublish(future, time.monotonic() + self.wait_timeout, self.wait_timeout, on_done)
        with self._lock:
            if self._closed:
                raise redis.ConnectionError("batch publisher is closed")
            self._ensure_thread()
            self._queue.put(_Item(script_keys, args, pending))
        return pending

    def publish_status(self, entry: Mapping[str, str]) -> PublishedIds:
        """Unfenced, rare: straight through the plain publisher."""
        return self.publisher.publish_status(entry)

    # -- life cycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if not self._closed:
                self._ensure_thread()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is already queued, stop the thread; later publishes raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        # Whatever the thread did not take (it never ran, or died) fails now.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                future = item.future
                if future.set_running_or_notify_cancel():
                    future.set_exception(redis.ConnectionError("batch publisher is closed"))
                    _quietly_settled(item.pending)
        if self._owns_client:
            self.redis.close()

    def _ensure_thread(self) -> None:  # under self._lock
        if self._thread is None or not self._thread.is_alive():
            if self._thread is not None:
                log.error("batch publisher thread had died: restarting it")
            self._thread = threading.Thread(target=self._run, name="batch-publisher", daemon=True)
            self._thread.start()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            item: _Item | None = None
            first = self._queue.get()  # blocks: no latency added, no polling when idle
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._send(batch)
            except BaseException as exc:  # never leave a caller hanging, never die
                log.exception("batch publisher: a batch of %d failed unexpectedly", len(batch))
                for item in batch:
                    if not item.future.done() and _settle(item.future, exception=exc):
                        _quietly_settled(item.pending)
                if not isinstance(exc, Exception):
                    raise
            # Not kept while waiting for the next batch: each caller's publish is freed
            # once it is done with it.
            del first, batch, item

    def _send(self, batch: list[_Item]) -> None:
        # A caller that gave up withdrew its entry: do not send it. One that does not wait
        # (submit_many) gives up at its deadline: withdrawn here for it.
        now = time.monotonic()
        live = []
        for item in batch:
            if item.pending.deadline <= now and item.future.cancel():
                _quietly_settled(item.pending)
            if item.future.set_running_or_notify_cancel():
                live.append(item)
        if not live:
            return
        try:
            replies = self._execute(live)
        except Exception as exc:  # Redis down, timed out, ...: every caller of this batch
            for item in live:
                item.future.set_exception(exc)
                _quietly_settled(item.pending)
            return
        for item, reply in zip(live, replies):
            future = item.future
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                try:
                    future.set_result(_ids(reply))
                except Exception as exc:  # an unexpected reply shape
                    future.set_exception(exc)
            _quietly_settled(item.pending)
        self.batches += 1
        self.entries += len(live)
        self.largest_batch = max(self.largest_batch, len(live))

    def _execute(self, items: list[_Item]) -> list[object]:
        """One pipeline of EVALSHA calls; reloads the script once if Redis lost it."""
        sha = self.publisher._publish.sha
        replies = self._pipeline(sha, items)
        missing = [i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:
            # Redis restarted or flushed its scripts: those calls did not run, so
            # sending them again cannot duplicate anything.
            self.redis.script_load(PUBLISH)
            again = self._pipeline(sha, [items[i] for i in missing])
            for i, reply in zip(missing, again):
                replies[i] = reply
        return replies

    def _pipeline(self, sha: str, items: list[_Item]) -> list[object]:
        with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.evalsha(sha, len(item.keys), *item.keys, *item.args)
            return list(pipe.execute(raise_on_error=False))


def _settle(future: Future[list[PublishedIds] | None], *, exception: BaseException) -> bool:
    """Fail `future` unless it is settled already; True when this did."""
    try:
        if not future.running() and not future.set_running_or_notify_cancel():
            return False  # the caller withdrew it
        future.set_exception(exception)
    except Exception:  # settled meanwhile
        return False
    return True


def _quietly_settled(pending: PendingPublish) -> None:
    # A caller's on_done that fails must not cost the other callers of the batch.
    try:
        pending._settled()
    except Exception:
        log.exception("batch publisher: a publish's on_done failed")


def batch_client(settings: Settings | None = None) -> redis.Redis:
    """The batch thread's own connection: same timeouts as the monitors' pool, and no
    retries, so a batch is sent at most once (a retried batch could land twice)."""
    return redis_clients.sync_client(
        redis_clients.ClientOptions(
            socket_timeout=BATCH_SOCKET_TIMEOUT,
            socket_connect_timeout=BATCH_SOCKET_TIMEOUT,
            health_check_interval=30,
            retry=Retry(NoBackoff(), 0),
            max_connections=4,
        ),
        settings,
    )
