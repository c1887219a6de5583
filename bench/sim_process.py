"""A bench child process (the simulator, the WebSocket clients), so its CPU is not
counted as the measured side's.

The child prints one JSON line when it listens, then answers each command line on
its stdin with one JSON line; closing stdin stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

from harness.process import ROOT, die_with_parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


class SimProcess:
    def __init__(
        self,
        module: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        config: Any = None,
    ) -> None:
        """`config`: written to the child's stdin as one JSON line before its hello."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._lock = threading.Lock()
        if config is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(config) + "\n")
            self.proc.stdin.flush()
        self.hello: dict[str, Any] = json.loads(self._line())
        self.port: int = self.hello.get("port", 0)

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("simulator process exited")
        return line

    def customers(self) -> dict[str, Any]:
        """The simulator's customers JSON, for a child that sends it in its first line
        (what harness.seed.seed_customers reads)."""
        return self.hello["customers"]

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            return json.loads(self._line())

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
