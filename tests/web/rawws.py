"""A WebSocket client that can stop reading: a raw socket, for slow-client tests.

Client libraries keep reading their socket into memory whatever their queue limits
say; a dashboard on a dead network does not. This one shakes hands and then reads
only when told, so the server's writes really back up; `frames()` parses what arrives.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import Iterator


class RawWebSocket:
    def __init__(self, host: str, port: int, path: str, *, receive_buffer: int = 4096) -> None:
        self.sock = socket.socket()
        # A small receive window before connecting: the kernel buffers little for us.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed during the handshake"
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:200]

    def frames(self, timeout: float = 30.0) -> Iterator[tuple[int, bytes]]:
        """(opcode, payload) of each frame from now on, until the server closes."""
        self.sock.settimeout(timeout)
        while True:
            while True:
                frame = self._frame()
                if frame is None:
                    break
                yield frame
                if frame[0] == 0x8:
                    return
            chunk = self.sock.recv(65536)
            if not chunk:
                return
            self._buffer += chunk

    def _frame(self) -> tuple[int, bytes] | None:
        data = self._buffer
        if len(data) < 2:
            return None
        opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, offset = struct.unpack(">H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, offset = struct.unpack(">Q", data[2:10])[0], 10
        if len(data) < offset + length:
            return None
        self._buffer = data[offset + length :]
        return opcode, data[offset : offset + length]

    def send(self, opcode: int, payload: bytes) -> None:
        """One final client frame (masked, as RFC 6455 requires of clients)."""
        mask = os.urandom(4)
        head = bytes([0x80 | opcode])
        if len(payload) < 126:
            head += bytes([0x80 | len(payload)])
        else:
            head += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self) -> None:
        self.sock.close()
