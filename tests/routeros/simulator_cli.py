"""The simulator as a command (`python -m routeros.simulator`): run it, start it, read
where it listens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def env_without_password(**extra: str) -> dict[str, str]:
    """This process's environment without MIKROTIK_PASS (the simulator's default source), plus extra."""
    env = {k: v for k, v in os.environ.items() if k != "MIKROTIK_PASS"}
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run `python -m routeros.simulator args` to its end (bad input, mostly)."""
    return subprocess.run(
        [sys.executable, "-m", "routeros.simulator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env_without_password(),
    )


def start_cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `python -m routeros.simulator args`; the caller terminates it."""
    return subprocess.Popen(
        [sys.executable, "-m", "routeros.simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def api_port(proc: subprocess.Popen[str]) -> int:
    """The API port from the simulator's first line (`api://127.0.0.1:<port>`)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"api://127\.0\.0\.1:(\d+)", line)
    assert found, line
    return int(found.group(1))
