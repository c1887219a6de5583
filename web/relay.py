"""The stream relay: one Redis reader per web process, fanned out to every WebSocket.

The reader task does plain `XREAD BLOCK` on the combined stream from the last id it
saw (never `$` twice: entries between two calls would be lost; never a consumer
group: each group member would get only part of the entries), on a connection of
its own whose socket timeout is above the block time. It survives Redis restarts:
it backs off, reconnects and resumes from its last id.

Every entry some subscriber may want is decoded and serialised once, then handed to the
outbox of each subscriber that wants it (by customer, by type). An entry none can want (a
type nobody named, such as every ping reply while no client asks for `latency`, or a
customer nobody follows while no client follows all) is read past from its raw fields,
never decoded: a client that comes for it later resumes it from the stream like any
entry it missed. An outbox is bounded: a client that
cannot keep up is not allowed to hold memory or slow the others; it is closed and
resumes by id (at-least-once, nothing lost within retention).

Resume (`Subscription.catch_up`): the subscriber registers first, so live entries
start queueing at once; then it reads what is retained after its `last_id` up to the
relay's position at registration (the per-customer streams when it filters by
customer, so the cost follows those customers only), and live entries at or below
what it already sent are dropped at the seam: no gap, no duplicate.

The router watches' entries (tasks/watch.py) are read the same way, from the same
stream: each top frame and session event has a small entry in the combined stream
whose id is also its id in its router's stream (tasks/watch_publisher.py). So one
XREAD still sees everything, in one id order, and one cursor resumes every type. A
top frame's summary there lacks the customer list: for the clients that asked for it
(`types=top`), the relay fetches the whole frame from the router's stream by that id,
once per frame, before fanning out. Catch-up reads the router streams themselves.
Clients that did not ask for these types (every client written before them) never
see them.

The monitors' `latency` entries (one per ping reply, tasks/pinger.py) are customer
entries like samples, read and resumed the same way, but also sent only to clients that
name them (`types=latency`): a client that names no types, or `types=traffic`, gets
exactly what it got before the ping.

Alert events (alert_firing, alert_resolved, alert_acknowledged: tasks/alerts.py) have a
stream of their own (keys.ALERTS_STREAM, trimmed by length, far longer-lived than the
combined stream), read by the same XREAD. They go only to clients that name them
(`types=alerts`), whatever customers or routers those follow: the dashboard's one feed
follows a few customers and wants every alert. Stream ids are per stream, so a
subscription keeps two seams, one per stream, and one resume id serves both (the alerts
stream's ids are Redis times like the others). An alert appended in the same
millisecond as, and after, an entry the client already had has an id at or below that
entry's: so a resume reads the alerts stream from the START of the resume id's
millisecond. An alert event of that millisecond may come twice (a client keys them by
alert_id and type); none is missed.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from common.backoff import Backoff
from common.text import as_text
from tasks import keys
from tasks.message import (
    ALERT_TYPES,
    GAP,
    LATENCY,
    ROUTER_TYPES,
    SESSION_TYPES,
    TOP,
    MessageError,
    decode_entry,
)
from tasks.watch_publisher import ROUTER_RETENTION

log = logging.getLogger(__name__)

TRAFFIC_TYPES = frozenset({"traffic"})
EVENT_TYPES = frozenset({"started", "offline", "reconnecting", "resumed", "stopped"})
TOP_TYPES = frozenset({TOP})
SESSION_EVENT_TYPES = frozenset(SESSION_TYPES)
LATENCY_TYPES = frozenset({LATENCY})
ALERT_TYPE_SET = frozenset(ALERT_TYPES)
# Sent only to clients that name them in `types`.
ROUTER_TYPE_SET = frozenset(ROUTER_TYPES)
OPT_IN_TYPES = ROUTER_TYPE_SET | LATENCY_TYPES | ALERT_TYPE_SET
# Types that are no customer's samples or status events.
NOT_CUSTOMER_TYPES = ROUTER_TYPE_SET | ALERT_TYPE_SET
CATCH_UP_PAGE = 1000
# Per stream when several are merged: few round trips, little held per stream.
MERGE_PAGE_MIN = 100


def parse_id(stream_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair; ValueError names the bad value."""
    ms, sep, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq) if sep else 0
    except ValueError:
        raise ValueError(f"not a stream id: {stream_id[:40]!r}") from None


@dataclass(frozen=True)
class Frame:
    """One entry as every client receives it, serialised once."""

    id: str
    key: tuple[int, int]
    customer_id: str
    type: str
    text: str
    ms: int
    router: str = ""  # a router watch's entry: its router's id
    summary: bool = False  # a top frame as the combined stream holds it: without its list
    alert: bool = False  # an alert event, from the alerts stream (its own ids, its own seam)

    @classmethod
    def of(cls, stream_id: object, fields: Any) -> Frame:
        entry = decode_entry(as_text(stream_id), fields)
        key = parse_id(entry["id"])
        kind = str(entry.get("type", ""))
        routed = kind in ROUTER_TYPE_SET
        return cls(
            id=entry["id"],
            key=key,
            customer_id=str(entry.get("customer_id") or ""),  # an alert's may be null
            type=kind,
            text=json.dumps(entry, separators=(",", ":")),
            ms=key[0],
            router=str(entry.get("router", "")) if routed else "",
            summary=kind == TOP and "top" not in entry,
            alert=kind in ALERT_TYPE_SET,
        )


@dataclass(frozen=True)
class Interest:
    """What a client wants: some customers (None = all), some types (None = samples and
    status events: what every client got before the router watches and the pings), some
    routers (None = all; for the router watches' types). Alert events go to whoever names
    them, whatever its customers and routers."""

    customers: frozenset[str] | None = None
    types: frozenset[str] | None = None
    routers: frozenset[str] | None = None

    def wants(self, frame: Frame) -> bool:
        if frame.alert:
            return self.types is not None and frame.type in self.types
        if frame.type in ROUTER_TYPE_SET:
            if self.types is None or frame.type not in self.types:
                return False
            return self.routers is None or frame.router in self.routers
        if self.customers is not None and frame.customer_id not in self.customers:
            return False
        return self.wants_type(frame.type)

    def wants_type(self, kind: str) -> bool:
        """A customer entry's type: named, or (no types named) one every client gets. A
        gap entry (entries of the customer missing from the stream: tasks/publisher.py)
        goes to every client that follows the customer's entries, whatever types it named."""
        if kind == GAP:
            return self.customer_types
        return kind not in OPT_IN_TYPES if self.types is None else kind in self.types

    @property
    def router_types(self) -> bool:
        """Does it ask for any router watch type?"""
        return self.types is not None and not self.types.isdisjoint(ROUTER_TYPE_SET)

    @property
    def alert_types(self) -> bool:
        """Does it ask for any alert event?"""
        return self.types is not None and not self.types.isdisjoint(ALERT_TYPE_SET)

    @property
    def customer_types(self) -> bool:
        """Does it ask for samples or status events (or pings)?"""
        return self.types is None or not self.types <= NOT_CUSTOMER_TYPES

    @property
    def opt_in(self) -> frozenset[str]:
        """The opt-in types it names (none without `types`): the relay counts them."""
        return frozenset() if self.types is None else frozenset(self.types & OPT_IN_TYPES)


class Overflow(Exception):
    """The client's outbox is full: it is too slow and must resume by id."""


@dataclass(eq=False)
class Subscription:
    """One client's place in the relay: its interest and its bounded outbox."""

    relay: Relay
    interest: Interest
    max_pending: int
    _frames: deque[Frame] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    sent_key: tuple[int, int] = (0, 0)  # the highest id handed out, for the seam
    alert_key: tuple[int, int] = (0, 0)  # the same for the alerts stream's ids
    registered_at: str = "0-0"  # the relay's position when this subscription began
    alerts_registered_at: str = "0-0"  # and in the alerts stream

    def offer(self, frames: Sequence[Frame]) -> None:
        """Called by the reader (same event loop): queue, or mark the client too slow."""
        if self.overflowed:
            return
        if len(self._frames) + len(frames) > self.max_pending:
            self.overflowed = True
            self._frames.clear()
        else:
            self._frames.extend(frames)
        self._ready.set()

    async def next_batch(self, timeout: float) -> list[Frame]:
        """Frames to send, oldest first ([] after `timeout`); raises Overflow when the
        client fell behind. Frames at or below what was already handed out are dropped
        (the seam between catch-up and live)."""
        if not self._frames and not self.overflowed:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        if self.overflowed:
            raise Overflow(self.sent_id)
        batch = self._past_seams(self._frames)
        self._frames.clear()
        return batch

    def _past_seams(self, frames: Iterable[Frame]) -> list[Frame]:
        """The frames above what was handed out from their stream; moves the seams."""
        batch = []
        for f in frames:
            if f.alert:
                if f.key > self.alert_key:
                    self.alert_key = f.key
                    batch.append(f)
            elif f.key > self.sent_key:
                self.sent_key = f.key
                batch.append(f)
        return batch

    @property
    def sent_id(self) -> str:
        return f"{self.sent_key[0]}-{self.sent_key[1]}"

    async def catch_up(self, last_id: str, retention_ms: int) -> AsyncIterator[list[Frame] | dict[str, Any]]:
        """Yield a gap frame if entries after `last_id` are gone, then every retained entry
        after it up to the registration point, page by page."""
        start = parse_id(last_id)
        self.sent_key = start
        # The whole millisecond of the resume id (module docstring): below any seq in it.
        self.alert_key = (start[0], -1)
        async for item in self.relay.history(
            self.interest, start, self.registered_at, retention_ms, alerts_until=self.alerts_registered_at
        ):
            if isinstance(item, dict):
                yield item
                continue
            frames = self._past_seams(item)
            if frames:
                yield frames

    def close(self) -> None:
        self.relay.unsubscribe(self)


def _raise_if_cancelled() -> None:
    """redis-py can absorb a cancellation that lands in a blocking read (returning, or
    raising a connection error, instead): the cancellation (app shutdown) still wins."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Relay:
    """One per web process. `run()` is the supervised reader; `subscribe()` for clients."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        stream: str = keys.COMBINED_STREAM,
        alerts_stream: str = keys.ALERTS_STREAM,
        block_ms: int = 1000,
        count: int = 500,
        max_pending: int = 5000,
        observe_lag: Callable[[float], None] | None = None,
    ) -> None:
        """`observe_lag` gets, for every entry read, the seconds between its stream id
        (when Redis appended it) and now: the relay's lag (a metrics histogram)."""
        self.redis = client
        self.stream = stream
        self.alerts_stream = alerts_stream
        self.block_ms = block_ms
        self.count = count
        self.max_pending = max_pending
        self.last_id: str | None = None
        self.alerts_last_id: str | None = None
        self._all: set[Subscription] = set()
        self._by_customer: dict[str, set[Subscription]] = {}
        self._unfiltered: set[Subscription] = set()
        self._routed: set[Subscription] = set()  # asked for a router watch type
        self._alerted: set[Subscription] = set()  # asked for alert events
        # How many subscribers name each opt-in type: an entry of a type nobody named is
        # skipped before it is decoded (see `_skip`).
        self._opt_in: Counter[str] = Counter()
        self.started = asyncio.Event()
        # Counters the metrics module reads.
        self.entries_read = 0
        self.frames_offered = 0
        self.restarts = 0
        self._observe_lag = observe_lag

    # -- subscribers --------------------------------------------------------------------

    def subscribe(self, interest: Interest) -> Subscription:
        sub = Subscription(
            self,
            interest,
            self.max_pending,
            registered_at=self.last_id or "0-0",
            alerts_registered_at=self.alerts_last_id or "0-0",
        )
        self._all.add(sub)
        self._opt_in.update(interest.opt_in)
        if interest.router_types:
            self._routed.add(sub)
        if interest.alert_types:
            self._alerted.add(sub)
        if interest.customer_types and interest.customers is None:
            self._unfiltered.add(sub)
        elif interest.customer_types:
            for customer in interest.customers or ():
                self._by_customer.setdefault(customer, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub not in self._all:
            return
        self._all.discard(sub)
        self._opt_in.subtract(sub.interest.opt_in)
        self._unfiltered.discard(sub)
        self._routed.discard(sub)
        self._alerted.discard(sub)
        for customer in sub.interest.customers or ():
            subs = self._by_customer.get(customer)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_customer[customer]

    @property
    def subscribers(self) -> int:
        return len(self._all)

    def _fan_out(self, frames: list[Frame]) -> None:
        per_sub: dict[Subscription, list[Frame]] = {}
        for frame in frames:
            if frame.alert:
                for sub in self._alerted:
                    if sub.interest.wants(frame):
                        per_sub.setdefault(sub, []).append(frame)
                continue
            if frame.type in ROUTER_TYPE_SET:
                for sub in self._routed:
                    if sub.interest.wants(frame):
                        per_sub.setdefault(sub, []).append(frame)
                continue
            targets: Iterable[Subscription] = self._unfiltered
            by_customer = self._by_customer.get(frame.customer_id)
            if by_customer:
                targets = (*self._unfiltered, *by_customer)
            for sub in targets:
                if sub.interest.wants_type(frame.type):
                    per_sub.setdefault(sub, []).append(frame)
        for sub, batch in per_sub.items():
            sub.offer(batch)
            self.frames_offered += len(batch)

    # -- the reader ---------------------------------------------------------------------

    async def run(self) -> None:
        """Read forever; Redis trouble is logged and retried with backoff, never fatal."""
        backoff = Backoff(initial=0.5, maximum=10.0)
        while True:
            try:
                if self.last_id is None:
                    self.last_id = await self._tail_id(self.stream)
                if self.alerts_last_id is None:
                    self.alerts_last_id = await self._tail_id(self.alerts_stream)
                self.started.set()
                while True:
                    await self._read_once()
                    _raise_if_cancelled()
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, MessageError) as exc:
                _raise_if_cancelled()
                self.restarts += 1
                delay = backoff.next_delay()
                log.warning("relay: reading %s failed (%s); retrying in %.1fs", self.stream, exc, delay)
                await asyncio.sleep(delay)

    async def _tail_id(self, stream: str) -> str:
        """Where a fresh process starts: the newest entry now (an explicit id, not `$`)."""
        newest = await self.redis.xrevrange(stream, count=1)
        return as_text(newest[0][0]) if newest else "0-0"

    async def _read_once(self) -> None:
        assert self.last_id is not None and self.alerts_last_id is not None
        reply: Any = await self.redis.xread(
            {self.stream: self.last_id, self.alerts_stream: self.alerts_last_id},
            count=self.count,
            block=self.block_ms,
        )
        if not reply:
            return
        now_ms = int(time.time() * 1000)
        frames: list[Frame] = []
        alerts: list[Frame] = []
        for name, entries in reply:
            if not entries:
                continue
            newest = as_text(entries[-1][0])  # past unreadable and skipped entries too
            self.entries_read += len(entries)
            if self._observe_lag is not None:
                for stream_id, _ in entries:
                    self._observe_lag(max(0, now_ms - _id_ms(stream_id)) / 1000)
            if as_text(name) == self.alerts_stream:
                self.alerts_last_id = newest
                if self._alerted:
                    alerts = [f for f in _readable(entries) if f.alert]
            else:
                self.last_id = newest
                kept = [e for e in entries if not self._skip(e[1])]
                frames = [f for f in _readable(kept) if not f.alert]
        if alerts:
            # Both streams in one id order, as a catch-up sends them.
            frames = list(heapq.merge(frames, alerts, key=lambda f: f.key))
        if frames and self._routed:
            frames = await self._whole_frames(frames)
        if frames:
            self._fan_out(frames)

    def _skip(self, fields: Any) -> bool:
        """Can no current subscriber want this combined-stream entry? Judged from its raw
        `type` and `customer_id`, so that most entries nobody wants (every ping reply
        while no client names `latency`, a customer nobody follows) cost no decoding
        and no JSON. Only a sure no is a skip: the fan-out still decides the rest."""
        kind = as_text(_field(fields, "type"))
        if kind in OPT_IN_TYPES and self._opt_in[kind] <= 0:
            return True
        if kind in NOT_CUSTOMER_TYPES or self._unfiltered:
            return False
        return as_text(_field(fields, "customer_id")) not in self._by_customer

    async def _whole_frames(self, frames: list[Frame]) -> list[Frame]:
        """Top frames someone asked for, whole: each from its router's stream by its id
        (one pipeline for the batch). One that is gone already stays a summary."""
        wanted = [
            i
            for i, f in enumerate(frames)
            if f.summary and any(sub.interest.wants(f) for sub in self._routed)
        ]
        if not wanted:
            return frames
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in wanted:
                pipe.xrange(keys.router_stream(frames[i].router), frames[i].id, frames[i].id)
            replies = await pipe.execute()
        out = list(frames)
        for i, reply in zip(wanted, replies):
            whole = _readable(reply or [])
            if whole and whole[0].id == frames[i].id:
                out[i] = whole[0]
        return out

    # -- history ------------------------------------------------------------------------

    async def history(
        self,
        interest: Interest,
        after: tuple[int, int],
        until: str,
        retention_ms: int,
        *,
        alerts_until: str | None = None,
    ) -> AsyncIterator[list[Frame] | dict[str, Any]]:
        """Retained entries after `after` up to `until` (inclusive; `alerts_until` in the
        alerts stream, default `until`), oldest first, in pages; a gap dict first when
        entries after `after` were trimmed away."""
        streams = await self._history_streams(interest, retention_ms)
        if not streams:
            return
        gap = await self._gap(streams, after)
        if gap is not None:
            yield gap
        alerts_end = alerts_until or until
        after_id = f"({after[0]}-{after[1]}"
        alerts_after = f"{after[0]}-0"  # inclusive: the resume id's whole millisecond
        ends = [
            (name, alerts_after, alerts_end) if name == self.alerts_stream else (name, after_id, until)
            for name, _ in streams
        ]
        if len(ends) == 1:
            async for page in self._pages(*ends[0], CATCH_UP_PAGE):
                yield [f for f in page if interest.wants(f)]
            return
        # Several streams: merge them by id (each is already in order), holding one small
        # page per stream, never everything retained (200 customers x 30 min).
        size = max(MERGE_PAGE_MIN, CATCH_UP_PAGE // len(ends))
        out: list[Frame] = []
        async for frame in _merge([self._pages(s, low, end, size) for s, low, end in ends]):
            if interest.wants(frame):
                out.append(frame)
                if len(out) >= CATCH_UP_PAGE:
                    yield out
                    out = []
        if out:
            yield out

    async def _history_streams(self, interest: Interest, retention_ms: int) -> list[tuple[str, int | None]]:
        """The streams a catch-up reads, each with its retention (ms; None: trimmed by
        length only): the combined or the customers' streams for samples and events, the
        routers' for their watches' types, the alerts stream for alert events."""
        streams: list[tuple[str, int | None]] = []
        if interest.customer_types:
            if interest.customers is None:
                streams.append((self.stream, retention_ms))
            else:
                streams += [(keys.customer_stream(c), retention_ms) for c in sorted(interest.customers)]
        if interest.router_types:
            retention = int(ROUTER_RETENTION * 1000)
            streams += [(keys.router_stream(r), retention) for r in await self._routers(interest)]
        if interest.alert_types:
            streams.append((self.alerts_stream, None))
        return streams

    async def _pages(self, stream: str, low: str, until: str, size: int) -> AsyncIterator[list[Frame]]:
        """`stream`'s entries from `low` (an XRANGE bound: "(" excludes) to `until`."""
        # The combined stream's copies of the router watches' entries are left out: a
        # catch-up that wants them reads them whole from their router streams.
        routed_copies = stream == self.stream
        while True:
            entries = await self.redis.xrange(stream, min=low, max=until, count=size)
            if not entries:
                return
            frames = _readable(entries)
            if stream == self.alerts_stream:
                frames = [f for f in frames if f.alert]
            elif routed_copies:
                frames = [f for f in frames if f.type not in ROUTER_TYPE_SET]
            yield frames
            if len(entries) < size:
                return
            low = f"({as_text(entries[-1][0])}"

    async def _routers(self, interest: Interest) -> list[str]:
        """The routers whose streams a catch-up reads: those asked for, or every one."""
        if interest.routers is not None:
            return sorted(interest.routers)
        found: set[str] = set()
        async for name in self.redis.scan_iter(match=keys.ROUTER_STREAMS_PATTERN, count=1000):
            router = keys.router_id_from_stream(name)
            if router is not None:
                found.add(router)
        return sorted(found)

    async def _gap(
        self, streams: list[tuple[str, int | None]], after: tuple[int, int]
    ) -> dict[str, Any] | None:
        """Were entries after `after` trimmed (or expired) before the client came back?
        `streams`: (name, its retention in ms, or None when it never expires)."""
        if after == (0, 0):
            return None  # "everything you have": nothing was promised before it
        horizon: tuple[int, int] | None = None
        for stream, retention_ms in streams:
            try:
                info = await self.redis.xinfo_stream(stream)
            except RedisError:
                if retention_ms is None:
                    continue  # never expires: no stream, nothing was ever in it
                # No stream at all: a stopped customer's stream expires after the retention,
                # so an id older than that may have had entries after it.
                now_ms = int(time.time() * 1000)
                if after[0] < now_ms - retention_ms:
                    candidate = (now_ms - retention_ms, 0)
                    horizon = candidate if horizon is None else max(horizon, candidate)
                continue
            first = info.get("first-entry")
            trimmed = int(info.get("entries-added", 0)) > int(info.get("length", 0))
            if first and trimmed:
                first_key = parse_id(as_text(first[0]))
                if after < first_key:
                    horizon = first_key if horizon is None else max(horizon, first_key)
        if horizon is None:
            return None
        return {"type": "gap", "from": f"{after[0]}-{after[1]}", "to": f"{horizon[0]}-{horizon[1]}"}


async def _merge(sources: list[AsyncIterator[list[Frame]]]) -> AsyncIterator[Frame]:
    """heapq.merge for async sources of ordered pages: frames in key order, with one
    page per source in memory at a time."""
    buffers: list[deque[Frame]] = [deque() for _ in sources]
    heap: list[tuple[tuple[int, int], int, Frame]] = []

    async def advance(i: int) -> None:
        while not buffers[i]:
            page = await anext(sources[i], None)
            if page is None:
                return
            buffers[i].extend(page)
        frame = buffers[i].popleft()
        heapq.heappush(heap, (frame.key, i, frame))

    for i in range(len(sources)):
        await advance(i)
    while heap:
        _, i, frame = heapq.heappop(heap)
        yield frame
        await advance(i)


def _field(fields: Any, name: str) -> object:
    """A raw entry's field, whichever way the client returns names (bytes or str)."""
    value = fields.get(name.encode())
    return fields.get(name, "") if value is None else value


def _id_ms(stream_id: object) -> int:
    """The millisecond part of a raw stream id (when Redis appended the entry)."""
    return int(as_text(stream_id).partition("-")[0])


def _readable(entries: list[Any]) -> list[Frame]:
    """Stream entries as frames; one that cannot be read is logged and skipped."""
    frames = []
    for stream_id, fields in entries:
        try:
            frames.append(Frame.of(stream_id, fields))
        except (MessageError, ValueError) as exc:
            log.warning("relay: skipping unreadable entry %s: %s", as_text(stream_id), exc)
    return frames
