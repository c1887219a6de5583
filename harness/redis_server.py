"""A throw-away `redis-server` a test or a bench may kill, restart or freeze.

The machine's shared Redis (6379) must never be stopped, so outage tests and the chaos
bench run their own server on a free port, without persistence (a restart comes back empty, which
is exactly the "Redis lost everything" case), and point every process at it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import redis

from harness.polling import wait_for
from harness.process import free_port, spawn_logged


class PrivateRedis:
    """`extra_args`: more redis-server options, e.g. ("--maxmemory", "4mb") for a Redis
    that fills up (the policy is always noeviction, as deployed)."""

    def __init__(self, workdir: Path, port: int | None = None, extra_args: Sequence[str] = ()) -> None:
        self.dir = workdir
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = spawn_logged(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--maxmemory-policy",
                "noeviction",
                *self.extra_args,
            ],
            self.dir / "redis.log",
            cwd=self.dir,
        )
        self.paused = False
        wait_for(self._answers, timeout, what=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited:\n{self.log()[-2000:]}")
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def log(self) -> str:
        try:
            return (self.dir / "redis.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill9(self) -> None:
        """Crash: no shutdown, every client connection reset at once."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart_empty(self) -> None:
        """kill -9, then a fresh server on the same port: clients reconnect to an empty Redis."""
        self.kill9()
        self.start()

    def pause(self) -> None:
        """Freeze: connections stay open (and new ones are accepted by the kernel) but
        nothing is answered, like a Redis stuck in a long fork or a network partition."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def client(self) -> redis.Redis:
        """A fresh client of this server (the caller closes it)."""
        return redis.Redis(port=self.port, socket_connect_timeout=2, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.proc.kill()
        self.proc.wait(10)
