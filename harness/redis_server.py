"""A throw-away `redis-server` a test or a bench may kill, restart or freeze.

The machine's shared Redis (6379) must never be stopped, so outage tests and the chaos
bench run their own server on a free port, without persistence (a restart comes back empty, which
is exactly the "Redis lost everything" case), and point every process at it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path

import redis

from harness.polling import wait_for
from harness.process import LoggedProcess, free_port, spawn_logged


def server_args(port: int, workdir: Path) -> list[str]:
    """A throw-away redis-server on localhost: nothing saved, `noeviction` as production."""
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--maxmemory-policy",
        "noeviction",
    ]


def answers(port: int) -> bool:
    """Does the Redis (or sentinel) on `port` answer PING now?"""
    client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class PrivateRedis(LoggedProcess):
    """`extra_args`: more redis-server options, e.g. ("--maxmemory", "4mb") for a Redis
    that fills up (the policy is always noeviction, as deployed)."""

    def __init__(self, workdir: Path, port: int | None = None, extra_args: Sequence[str] = ()) -> None:
        super().__init__("redis-server", workdir / "redis.log")
        self.dir = workdir
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = spawn_logged(
            [*server_args(self.port, self.dir), *self.extra_args],
            self.log_path,
            cwd=self.dir,
        )
        self.paused = False
        wait_for(self._answers, timeout, what=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        self.check_running()
        return answers(self.port)

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

    def stop(self, timeout: float = 15.0) -> None:
        """Thawed if frozen, then killed: nothing is saved, so there is no shutdown to
        wait `timeout` for."""
        if self.paused and self.alive():
            self.resume()
        self.kill9()
