"""A writable Flower on an engine's broker, for the tests that read monitors and watches
through its HTTP API."""

from __future__ import annotations

from pathlib import Path

import httpx

from harness.polling import wait_for
from harness.process import free_port
from harness.workers import CeleryProcess
from tests.tasks.engine import Engine


def start_flower(engine: Engine, tmp: Path, user: str, password: str) -> str:
    """A Flower (its HTTP API writable, basic auth) on the engine's broker; its base URL.
    It is stopped with the engine's processes."""
    port = free_port()
    env = {**engine.env, "FLOWER_BASIC_AUTH": f"{user}:{password}"}
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    proc = CeleryProcess(
        ["flower", f"--port={port}", "--address=127.0.0.1"], env, tmp / "flower.log", "Visit me", "flower-rw"
    ).start()
    engine.processes.append(proc)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthcheck", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 20.0, what="flower to answer", step=0.1)
    return base
