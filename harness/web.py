"""A real uvicorn process serving web.app:app, for tests and benches that need the whole stack."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx2 as httpx

from harness.polling import wait_for
from harness.process import free_port, spawn_logged


class Uvicorn:
    """`python -m uvicorn web.app:app` on a free port with the given environment."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

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
                # as deployed (web/__main__.py): wsproto, protocol pings on, no deflate
                "--ws",
                "wsproto",
                "--ws-ping-interval",
                "20",
                "--ws-ping-timeout",
                "20",
                "--ws-per-message-deflate",
                "false",
            ],
            self.log_path,
            self.env,
        )
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"uvicorn exited early:\n{self.log()[-4000:]}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout, step=0.05, what="uvicorn to answer /health")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """Crash: no shutdown, every client's socket reset; `start()` brings it back on
        the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
