"""`/ws`: the live feed, as the seed's dashboards expect it, resumable by id.

A client written for the seed connects with no parameters and gets every customer's
entries, one flat JSON object per frame (tasks.message's format, `id` = stream id).
Optional query parameters:
  customer_id=<uuid>       repeatable: only these customers
  types=traffic|events     only samples, or only status events
  last_id=<stream id>      resume: every retained entry after it, in order, then live
Server frames besides entries: {"type":"gap","from":..,"to":..} when entries after
last_id are gone, {"type":"ping"} every PING_EVERY seconds, {"type":"pong"} answering a
client's {"type":"ping"}. A client that cannot keep up is closed with 1013 and a reason
naming the id to resume from.

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

import anyio
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from settings import Settings
from web.auth import accepted_subprotocol, websocket_refusal
from web.relay import EVENT_TYPES, TRAFFIC_TYPES, Interest, Overflow, Relay, Subscription, parse_id

log = logging.getLogger(__name__)

PING_EVERY = 20.0
SEND_TIMEOUT = 10.0  # a client whose socket takes longer than this to take one frame is gone
MAX_CUSTOMERS = 200
TRY_AGAIN_LATER = 1013


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
    types_param = params.get("types")
    types: frozenset[str] | None = None
    if types_param is not None:
        if types_param == "traffic":
            types = TRAFFIC_TYPES
        elif types_param == "events":
            types = EVENT_TYPES
        else:
            raise BadRequest(f"types: must be 'traffic' or 'events', got {types_param[:40]!r}")
    last_id = params.get("last_id")
    if last_id is not None:
        try:
            parse_id(last_id)
        except ValueError:
            raise BadRequest(f"last_id: {last_id[:60]!r} is not a stream id like 1795517328938-0") from None
    return FeedRequest(Interest(frozenset(customers) if customers else None, types), last_id)


class Feed:
    """One WebSocket connection's life, from handshake to close."""

    def __init__(self, websocket: WebSocket, relay: Relay, settings: Settings) -> None:
        self.ws = websocket
        self.relay = relay
        self.settings = settings
        self._send_lock = asyncio.Lock()
        self.closed_slow = False

    async def serve(self) -> None:
        refusal = websocket_refusal(self.ws, self.settings)
        if refusal is None:
            try:
                request = parse_feed_request(self.ws.query_params)
            except BadRequest as exc:
                refusal = JSONResponse(
                    {"status": "error", "message": str(exc), "code": "invalid_parameter"}, status_code=400
                )
        if refusal is not None:
            await self.ws.send_denial_response(refusal)
            return
        await self.ws.accept(subprotocol=accepted_subprotocol(self.ws))
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
        try:
            if last_id is not None:
                async for item in sub.catch_up(last_id, self.settings.customer_stream_retention * 1000):
                    if isinstance(item, dict):
                        await self._send_text(json.dumps(item))
                    else:
                        for frame in item:
                            await self._send_text(frame.text)
            next_ping = time.monotonic() + PING_EVERY
            while True:
                batch = await sub.next_batch(timeout=max(0.0, next_ping - time.monotonic()))
                for frame in batch:
                    await self._send_text(frame.text)
                if time.monotonic() >= next_ping:
                    await self._send_text('{"type":"ping"}')
                    next_ping = time.monotonic() + PING_EVERY
        except Overflow as exc:
            self.closed_slow = True
            log.info("ws: closing a client that fell behind (resume from %s)", exc.args[0])
            await self._close(TRY_AGAIN_LATER, f"too slow: reconnect with last_id={exc.args[0]}")
        except (WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
            return  # gone (or stuck): the receiver or the task group finishes the rest

    async def _receive(self) -> None:
        try:
            async for text in self.ws.iter_text():
                if _is_ping(text):
                    await self._send_text('{"type":"pong"}')
        except (WebSocketDisconnect, RuntimeError):
            return

    async def _send_text(self, text: str) -> None:
        async with self._send_lock:
            await asyncio.wait_for(self.ws.send_text(text), SEND_TIMEOUT)

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, reason=reason[:120]), SEND_TIMEOUT)
        except (RuntimeError, OSError, TimeoutError):
            pass


def _is_ping(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"
