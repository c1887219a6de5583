"""A real uvicorn process serving web.app:app, for tests and benches that need the whole stack."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

from harness.polling import wait_for
from harness.process import LoggedProcess, free_port, spawn_logged
from web.__main__ import UVICORN_WS


class Uvicorn(LoggedProcess):
    """`python -m uvicorn web.app:app` on a free port with the given environment; `kill9()`
    then `start()` brings it back on the same port."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, ws_ping: float = 20.0) -> None:
        super().__init__("uvicorn", log_path)
        self.env = dict(env)
        self.port = free_port()
        self.ws_ping = ws_ping

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Uvicorn:
        self.proc = spawn_logged(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "web.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                # as deployed (web/__main__.py): its WebSocket protocol, protocol pings
                # on, no deflate
                "--ws",
                UVICORN_WS["ws"],
                "--ws-ping-interval",
                str(self.ws_ping),
                "--ws-ping-timeout",
                str(self.ws_ping),
                "--ws-per-message-deflate",
                "false",
            ],
            self.log_path,
            self.env,
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def up() -> bool:
            self.check_running()
            try:
                return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout, step=0.05, what="uvicorn to answer /health")


@contextmanager
def serving(env: Mapping[str, str], log_path: Path, *, ws_ping: float = 20.0) -> Iterator[Uvicorn]:
    """A uvicorn that answers /health, stopped on the way out."""
    server = Uvicorn(env, log_path, ws_ping=ws_ping).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
