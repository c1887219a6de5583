"""`/ws`: the live feed, as the seed's dashboards expect it, resumable by id.

A client written for the seed connects with no parameters and gets every customer's
entries, one flat JSON object per frame (tasks.message's format, `id` = stream id).
Optional query parameters:
  customer_id=<uuid>       repeatable: only these customers
  types=traffic|events|top|sessions|latency|alerts
                           comma-separated: samples, status events, the router watches'
                           top frames, their session_up/session_down events, the
                           monitors' ping replies, alert events (alert_firing,
                           alert_resolved, alert_acknowledged; the last four only when
                           asked for: a client that names no types gets samples and
                           status events, as before them)
  router=<router id>       repeatable: top frames and session events of these routers only
                           (alert events are never filtered by customer_id or router)
  last_id=<stream id>      resume: every retained entry after it, in order, then live
Server frames besides entries: {"type":"gap","from":..,"to":..} when entries after
last_id are gone; the same type, with customer_id, session_id, seq_from, seq_to and lost,
when a session's entries are missing from the stream (a Redis failover lost them, or a
publish failed: tasks/publisher.py), sent live and on resume to every client that
follows that customer, whatever types it named; {"type":"ping"} every WS_PING_INTERVAL
seconds (browsers cannot see protocol pings: this one lets a page notice a dead feed),
{"type":"pong"} answering a client's {"type":"ping"}. A client that cannot keep up is
closed with 1013 and a reason naming the id to resume from; so is one over
WS_MAX_CONNECTIONS, at once. A binary frame is closed with 1003 (the feed speaks text);
a client that stops answering protocol pings is closed by uvicorn with 1011. Every
refused handshake is one WARNING line with the reason and the peer.

Each connection runs a sender (catch-up, then its outbox) and a receiver side by side;
whichever ends first ends both, so a vanished client is noticed at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from types import TracebackType

import anyio
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from web.auth import Refusal, accepted_subprotocol, websocket_refusal
from web.hosts import peer
from web.relay import (
    ALERT_TYPE_SET,
    EVENT_TYPES,
    LATENCY_TYPES,
    SESSION_EVENT_TYPES,
    TOP_TYPES,
    TRAFFIC_TYPES,
    Frame,
    Interest,
    Overflow,
    Relay,
    Subscription,
    parse_id,
)
from web.state import AppState

log = logging.getLogger(__name__)

SEND_TIMEOUT = 10.0  # a client whose socket takes longer than this to take one frame is gone
MAX_CUSTOMERS = 200
MAX_ROUTERS = 200
MAX_ROUTER_ID = 100  # routers.id's length
TYPE_NAMES = {
    "traffic": TRAFFIC_TYPES,
    "events": EVENT_TYPES,
    "top": TOP_TYPES,
    "sessions": SESSION_EVENT_TYPES,
    "latency": LATENCY_TYPES,
    "alerts": ALERT_TYPE_SET,
}
TRY_AGAIN_LATER = 1013
UNSUPPORTED_DATA = 1003


class BadRequest(ValueError):
    """A query parameter of the handshake is malformed; the message names it."""


@dataclass(frozen=True)
class FeedRequest:
    interest: Interest
    last_id: str | None


def parse_feed_request(params: QueryParams) -> FeedRequest:
    customers: set[str] = set()
    for raw in params.getlist("customer_id"):
        for value in raw.split(","):
            try:
                customers.add(str(uuid.UUID(value.strip())))
            except ValueError:
                raise BadRequest(f"customer_id: {value[:60]!r} is not a UUID") from None
    if len(customers) > MAX_CUSTOMERS:
        raise BadRequest(f"customer_id: at most {MAX_CUSTOMERS} customers per connection")
    types = _types(params.get("types"))
    routers = _routers(params.getlist("router"))
    if routers is not None and (types is None or not (types & (TOP_TYPES | SESSION_EVENT_TYPES))):
        raise BadRequest("router: filters the router watches' types only: add types=top or types=sessions")
    last_id = params.get("last_id")
    if last_id is not None:
        try:
            parse_id(last_id)
        except ValueError:
            raise BadRequest(f"last_id: {last_id[:60]!r} is not a stream id like 1795517328938-0") from None
    return FeedRequest(Interest(frozenset(customers) if customers else None, types, routers), last_id)


def _types(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    types: set[str] = set()
    for name in text.split(","):
        wanted = TYPE_NAMES.get(name.strip())
        if wanted is None:
            raise BadRequest(f"types: each must be one of {', '.join(TYPE_NAMES)}, got {name[:40]!r}")
        types |= wanted
    return frozenset(types)


def _routers(raws: list[str]) -> frozenset[str] | None:
    routers = {value.strip() for raw in raws for value in raw.split(",") if value.strip()}
    for router in routers:
        if len(router) > MAX_ROUTER_ID:
            raise BadRequest(f"router: {router[:40]!r}... is longer than {MAX_ROUTER_ID} characters")
    if len(routers) > MAX_ROUTERS:
        raise BadRequest(f"router: at most {MAX_ROUTERS} routers per connection")
    return frozenset(routers) if routers else None


class Feed:
    """One WebSocket connection's life, from handshake to close."""

    def __init__(self, websocket: WebSocket, state: AppState) -> None:
        self.ws = websocket
        self.state = state
        self.relay: Relay = state.relay
        self.settings = state.settings
        self.metrics = state.metrics
        self._send_lock = asyncio.Lock()
        # The last entry whose frame went out: what a client closed for being slow must
        # resume from (frames taken from the outbox but not yet sent do not count).
        self.delivered: str | None = None

    async def serve(self) -> None:
        refusal = websocket_refusal(self.ws, self.settings, self.state.throttle)
        if refusal is None:
            try:
                request = parse_feed_request(self.ws.query_params)
            except BadRequest as exc:
                response = JSONResponse(
                    {"status": "error", "message": str(exc), "code": "invalid_parameter"}, status_code=400
                )
                refusal = Refusal(response, f"bad parameter: {exc}")
        if refusal is not None:
            self._log_refusal(refusal.reason, refusal.response.status_code)
            self.metrics.ws_refused.labels(str(refusal.response.status_code)).inc()
            await self.ws.send_denial_response(refusal.response)
            return
        await self.ws.accept(subprotocol=accepted_subprotocol(self.ws))
        if self.state.ws_open >= self.settings.ws_max_connections:
            # Refused after accept: a close code is the only refusal a browser shows.
            cap = self.settings.ws_max_connections
            self._log_refusal(f"cap: {cap} connections open (WS_MAX_CONNECTIONS)", TRY_AGAIN_LATER)
            self.metrics.ws_refused.labels(str(TRY_AGAIN_LATER)).inc()
            await self._close(TRY_AGAIN_LATER, "too many connections: try again later")
            return
        self.state.ws_open += 1
        try:
            await self._serve(request)
        finally:
            self.state.ws_open -= 1

    def _log_refusal(self, reason: str, status: int) -> None:
        log.warning("ws: refused a handshake from %s (%s): %s", peer(self.ws.scope), status, reason)

    async def _serve(self, request: FeedRequest) -> None:
        self.metrics.ws_connections.inc()
        # Entries between the client's last id and the reader's first read must not fall
        # between catch-up and live: register only once the reader knows its position.
        await asyncio.wait_for(self.relay.started.wait(), timeout=10.0)
        sub = self.relay.subscribe(request.interest)
        try:
            async with anyio.create_task_group() as group:

                async def send_then_stop() -> None:
                    await self._send(sub, request.last_id)
                    group.cancel_scope.cancel()

                async def receive_then_stop() -> None:
                    await self._receive()
                    group.cancel_scope.cancel()

                group.start_soon(send_then_stop)
                group.start_soon(receive_then_stop)
        finally:
            sub.close()

    async def _send(self, sub: Subscription, last_id: str | None) -> None:
        self.delivered = last_id
        try:
            if last_id is not None:
                async for item in sub.catch_up(last_id, self.settings.customer_stream_retention * 1000):
                    if isinstance(item, dict):
                        await self._send_text(json.dumps(item))
                    else:
                        await self._send_frames(item)
            every = self.settings.ws_ping_interval
            next_ping = time.monotonic() + every
            while True:
                batch = await sub.next_batch(timeout=max(0.0, next_ping - time.monotonic()))
                await self._send_frames(batch)
                if time.monotonic() >= next_ping:
                    await self._send_text('{"type":"ping"}')
                    next_ping = time.monotonic() + every
        except (Overflow, TimeoutError):
            # Its outbox overflowed, or one frame took SEND_TIMEOUT to leave: the client
            # cannot keep up. Close it (the close frame follows what is buffered) and let
            # it resume by id; nothing is lost within retention.
            self.metrics.ws_closed_slow.inc()
            resume = self.delivered or "0-0"
            log.info("ws: closing a client that fell behind (resume from %s)", resume)
            await self._close(TRY_AGAIN_LATER, f"too slow: reconnect with last_id={resume}")
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # gone: the receiver or the task group finishes the rest

    async def _receive(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    log.info("ws: closing %s, which sent a binary frame", peer(self.ws.scope))
                    await self._close(UNSUPPORTED_DATA, "binary frames are not accepted: send JSON text")
                    return
                if _is_ping(text):
                    await self._send_text('{"type":"pong"}')
        except (WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
            return

    async def _send_frames(self, frames: list[Frame]) -> None:
        if not frames:
            return
        # Each frame gets SEND_TIMEOUT from the one before it, as with an asyncio.timeout
        # per frame, which cost as much as framing the frame (about 5 us): StallTimeout.
        async with self._send_lock, StallTimeout(SEND_TIMEOUT) as deadline:
            for frame in frames:
                await self.ws.send_text(frame.text)
                self.delivered = frame.id
                deadline.progress()
        self.metrics.frames_sent.inc(len(frames))

    async def _send_text(self, text: str) -> None:
        async with self._send_lock, asyncio.timeout(SEND_TIMEOUT):
            await self.ws.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, reason=reason[:120]), SEND_TIMEOUT)
        except (RuntimeError, OSError, TimeoutError):
            pass


class StallTimeout:
    """asyncio.timeout for a run of steps: TimeoutError once `seconds` pass without a step
    done (`progress()`), however long the whole run takes. One timer for the run, not one
    per step: only when it comes due is the last progress looked at, and the deadline
    moved past it or let expire."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._timeout = asyncio.timeout(None)
        self._loop = asyncio.get_running_loop()
        self._now = self._loop.time
        self._last = self._now()
        self._watchdog: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> StallTimeout:
        await self._timeout.__aenter__()
        self._last = self._now()
        self._watchdog = self._loop.call_at(self._last + self._seconds, self._watch)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self._timeout.__aexit__(exc_type, exc, tb)

    def progress(self) -> None:
        """A step is done: the next one has `seconds` from now."""
        self._last = self._now()

    def _watch(self) -> None:
        due = self._last + self._seconds
        if self._now() >= due:
            self._timeout.reschedule(due)  # in the past: expires at once
        else:
            self._watchdog = self._loop.call_at(due, self._watch)


def _is_ping(text: str) -> bool:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        return False
    return isinstance(message, dict) and message.get("type") == "ping"
