"""web.wsprotocol's CoalescingTransport: one write per event-loop pass, in order, handed
over at once past FLUSH_BYTES (flow control), and flushed by close. /ws over the whole
protocol is tests/web/test_ws.py (its server runs web/__main__.py's protocol)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from web.wsprotocol import FLUSH_BYTES, CoalescingTransport

pytestmark = pytest.mark.anyio


class Recorded(asyncio.Transport):
    """The wrapped transport's side: what reaches it, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_coalescing_transport_sends_one_pass_of_writes_as_one_write_in_order() -> None:
    inner = Recorded()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    for data in (b"a", b"bb", b"ccc"):
        transport.write(data)
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 6  # what waits counts for flow control
    await asyncio.sleep(0)  # the pass ends
    assert inner.writes == [b"abbccc"]
    transport.write(b"d")
    await asyncio.sleep(0)
    assert inner.writes == [b"abbccc", b"d"]


async def test_coalescing_transport_hands_over_at_once_past_flush_bytes() -> None:
    inner = Recorded()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    chunk = b"x" * 1000
    for _ in range(FLUSH_BYTES // len(chunk) + 1):
        transport.write(chunk)
    # Without yielding: the wrapped transport has them, and can pause the protocol.
    assert [len(w) for w in inner.writes] == [(FLUSH_BYTES // len(chunk) + 1) * len(chunk)]
    assert transport.get_write_buffer_size() == 0


async def test_coalescing_transport_drops_what_waits_once_the_connection_is_gone() -> None:
    inner = Recorded()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"late")
    inner.closed = True  # lost before the pass ended
    await asyncio.sleep(0)
    assert inner.writes == []


async def test_coalescing_transport_close_sends_what_waits_first() -> None:
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(await reader.read())  # to EOF
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        raw, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        transport = CoalescingTransport(raw, loop)
        transport.write(b"first ")
        transport.write(b"second")
        transport.close()  # before the pass ends
        assert await asyncio.wait_for(received, 10) == b"first second"
    finally:
        server.close()
        await server.wait_closed()
