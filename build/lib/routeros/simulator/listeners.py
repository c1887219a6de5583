"""The API services' listening sockets, which the simulator can take away and give back.

A closed listener is what a client sees while a router reboots or its API service is
disabled: connection refused. Sessions already accepted are not affected by it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

__all__ = ["Listener"]


class Listener:
    """One service's listening socket (api or api-ssl); re-opened on the port it first got."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.factory = factory
        self.host = host
        self.port = port  # 0 until the first start() picks an ephemeral port
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None

    @property
    def is_open(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        if self.ssl_context is None:
            server = await loop.create_server(self.factory, self.host, self.port)
        else:
            server = await loop.create_server(
                self.factory, self.host, self.port, ssl=self.ssl_context, ssl_handshake_timeout=10.0
            )
        self._server = server
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listening socket now; new connections are refused from here on."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
