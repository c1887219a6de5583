"""`make demo` on embedded defaults: its own Redis, SQLite and simulator, every process,
a sample on /ws, and a clean stop that leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
from websockets.sync.client import connect

from harness.process import ROOT, die_with_parent
from scripts.demo import saturated_customer

CONFIGURED = ("REDIS_URL", "REDIS_ADDR", "DATABASE_URL", "DB_HOST", "MIKROTIK_HOST", "API_TOKEN", "WEB_PORT")


def test_demo_runs_everything_on_embedded_defaults_and_stops_clean(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURED and not k.startswith("MONITOR_")}
    env.update(DATA_DIR=str(tmp_path), ENV_FILE="/nonexistent", DEMO_MONITORS="3", PYTHONUNBUFFERED="1")
    demo = subprocess.Popen(
        [sys.executable, "-m", "scripts.demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=die_with_parent,
    )
    assert demo.stdout is not None
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("Ctrl-C stops everything" in line for line in output):
            assert time.monotonic() < deadline and demo.poll() is None, "".join(output)
            output.append(demo.stdout.readline())
        text = "".join(output)
        dashboard = re.search(r"Dashboard: (http://127\.0\.0\.1:(\d+))", text)
        assert dashboard, text
        assert "Flower (read-only): http://127.0.0.1:" in text and "password" in text
        assert "No API_TOKEN set" in text and "private redis-server" in text and "SQLite" in text
        monitoring = next(line for line in output if line.startswith("Monitoring "))
        assert saturated_customer() in monitoring  # the customer driven to its plan is watched
        assert f"{saturated_customer()} is driven to its plan" in text
        # The one enabled alert rule, on that customer (it fires within each saturation).
        assert f"Alert rule enabled: Demo: {saturated_customer()} at 90% of plan" in text
        children = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in children)
        for part in (
            "redis-server",
            "routeros.simulator",
            "-m web",
            "-Q monitors",
            "-Q default",
            "beat",
            "flower",
        ):
            assert part in names, (part, names)

        with connect(f"ws://127.0.0.1:{dashboard.group(2)}/ws", open_timeout=10) as ws:
            deadline = time.monotonic() + 30
            while True:
                assert time.monotonic() < deadline, "no sample on /ws"
                message = json.loads(ws.recv(timeout=30))
                if message.get("type") == "traffic":
                    break

        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0, rest
        assert "demo stopped: no process, port or Redis data left behind" in rest
        assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        with socket.socket() as s:
            # A server could listen on the web port again (as servers do, past TIME_WAIT).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(dashboard.group(2))))
            s.listen()
        assert not (tmp_path / "demo" / "redis").exists()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
