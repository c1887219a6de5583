"""uvicorn's wsproto WebSocket protocol with its socket writes coalesced.

uvicorn writes every WebSocket message to its transport at once, and the transport makes
one `write` system call per message. /ws sends a relay batch to a client as a run of
messages without yielding to the event loop (web/ws.py), so each frame of each client was
one system call: 13 % of the web process's CPU at 1,000 monitors (docs/scaling.md). Here
the protocol's transport is wrapped: what it writes in one pass of the event loop leaves
in one write at the end of that pass. The bytes, and so the frames on the wire, are the
same; only the TCP segments carrying them are fewer.

Flow control is unchanged: once what waits reaches `FLUSH_BYTES` it goes to the transport
at once, so the transport's high-water mark still pauses uvicorn's sends (and with them a
slow client's sender, until web/ws.py's deadline drops it) after about as many bytes as
without the wrapper.

A close frame does not wait for room in the socket (`CoalescingWSProtocol.send`): a slow
client gets what was buffered for it, then its close frame with the id to resume from.

`python -m web` (web/__main__.py) serves with this protocol; plain `--ws wsproto` works
the same, one write per frame, and a full socket may hold a close frame back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

# asyncio's and uvloop's default high-water mark: pending bytes beyond it go out at once.
FLUSH_BYTES = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport whose writes wait for the end of the event loop's pass (or for
    FLUSH_BYTES), then leave as one write, in order. Everything else is the wrapped
    transport's; closing it first hands over what waits (asyncio's close flushes too)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes | bytearray | memoryview] = []
        self._pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand what waits to the wrapped transport (a no-op when nothing does)."""
        if not self._pending:
            return
        pending = self._pending
        self._pending = []
        self._pending_bytes = 0
        if self._transport.is_closing():
            return  # lost or aborted: the bytes have nowhere to go, as with a plain write
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._pending_bytes = 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class CoalescingWSProtocol(WSProtocol):
    """uvicorn's wsproto protocol, writing through a CoalescingTransport; and a close frame
    is never held back by a full socket."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))

    async def send(self, message: Any) -> None:
        if message["type"] == "websocket.close" and not self.writable.is_set():
            # uvicorn waits for room in the socket before every send, the close too. A
            # client closed for being slow (web/ws.py) is closed BECAUSE its socket is full:
            # its close frame, with the id to resume from, waited out SEND_TIMEOUT and the
            # socket was cut without it (its keepalive pings, written without waiting, still
            # went). The frame goes behind what is buffered instead (a transport takes writes
            # past its high-water mark; the pause is advice) and the socket closes after it.
            self.writable.set()
        await super().send(message)
