"""Real Celery worker and beat processes (tests and benchmarks).

Each process runs `celery -A tasks ...` from the repository root with the
environment the caller gives it (DATABASE_URL of a throw-away schema, REDIS_URL of
the test database, TTLs shrunk to seconds) and logs to a file, which is what
readiness is detected from: no fixed sleeps.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.polling import wait_for
from harness.process import LoggedProcess, spawn_logged

_names = itertools.count(1)


class CeleryProcess(LoggedProcess):
    """One `celery -A tasks` subprocess (worker or beat) with its log file."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str], log_path: Path, ready_marker: str, name: str
    ) -> None:
        super().__init__(name, log_path)
        self.args = list(args)
        self.env = dict(env)
        self.ready_marker = ready_marker

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> CeleryProcess:
        command = [sys.executable, "-m", "celery", "-A", "tasks", *self.args]
        self.proc = spawn_logged(command, self.log_path, self.env)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            self.check_running()
            return self.ready_marker in self.log()

        wait_for(ready, timeout, step=0.05, what=f"{self.name} to be ready")

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout:.1f}s:\n{self.log()[-4000:]}"
            ) from None


def worker(
    env: Mapping[str, str],
    tmp_dir: Path,
    queues: str = "monitors",
    concurrency: int = 8,
    name: str | None = None,
    loglevel: str = "INFO",
) -> CeleryProcess:
    """A threads-pool worker as deployed: no prefetch, task events on. `name`: the node
    name's left part (`name@<this host>`), or a whole node name (`m1@host1`: a test that
    simulates several hosts on this one)."""
    name = name or f"w{next(_names)}-{os.getpid()}"
    node = name if "@" in name else f"{name}@%h"
    args = [
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "--disable-prefetch",
        "-n",
        node,
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return CeleryProcess(args, env, tmp_dir / f"{name}.log", " ready.", name)


def beat(env: Mapping[str, str], tmp_dir: Path) -> CeleryProcess:
    name = f"beat-{next(_names)}-{os.getpid()}"
    args = [
        "beat",
        "-l",
        "INFO",
        "-s",
        str(tmp_dir / f"{name}-schedule"),
        "--pidfile",
        str(tmp_dir / f"{name}.pid"),
    ]
    # beat logs "beat: Starting..." once its scheduler loop runs.
    return CeleryProcess(args, env, tmp_dir / f"{name}.log", "beat: Starting...", name)
