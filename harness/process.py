"""Child processes die with the run that started them; free ports; the repository root.

Workers, beat, uvicorn and private redis-servers run in their own sessions (so a test
or a bench can signal them one by one). If the parent is killed (a CI timeout, Ctrl-C
twice) its clean-up never runs, and a stray monitors worker would take the next run's
messages. Linux can tie a child's life to its parent's: PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A `preexec_fn`: SIGKILL this child when the process that started it exits."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn_logged(
    args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """Start `args` in a session of its own, its output appended to `log_path`, tied to us."""
    # The child keeps its own copy of the log descriptor.
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


class LoggedProcess:
    """A child process that writes its output to `log_path` (started by the subclass,
    through `spawn_logged`): what uvicorn, Celery and private redis-servers share."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_running(self) -> None:
        """For readiness polls: fail at once, with the end of its log, if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log()[-4000:]}")

    def kill9(self) -> None:
        """Crash: no shutdown, every connection it holds reset at once."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not go; never leaves a process behind."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
