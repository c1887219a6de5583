"""`python -m web`: what it refuses to start with, like Redis's protected mode, each
refusal a non-zero exit with a message naming the variable to set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx

from harness.polling import wait_for
from harness.process import ROOT, free_port
from tests.web.webdb import WebDb


def _run(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web"],
        cwd=ROOT,
        env={**os.environ, "ENV_FILE": str(tmp_path / "none.env"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_main_refuses_an_open_api_beyond_loopback(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.7", "noc.example.net"):
        done = _run({"API_TOKEN": "", "WEB_HOST": host}, tmp_path)
        assert done.returncode != 0, host
        assert (
            "API_TOKEN" in done.stderr and "WEB_ALLOW_OPEN" in done.stderr and "Traceback" not in done.stderr
        )


def test_main_refuses_a_short_token_and_wildcard_origins_with_a_token(tmp_path: Path) -> None:
    short = _run({"API_TOKEN": "hunter2hunter2"}, tmp_path)
    assert short.returncode != 0
    assert "API_TOKEN must be at least 32 characters" in short.stderr and "mtmon token" in short.stderr
    assert "hunter2" not in short.stderr and "Traceback" not in short.stderr
    wildcard = _run({"API_TOKEN": "k" * 40, "ALLOWED_ORIGINS": "*"}, tmp_path)
    assert wildcard.returncode != 0 and "ALLOWED_ORIGINS=*" in wildcard.stderr


def test_main_serves_openly_beyond_loopback_only_when_told(web_db: WebDb, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ENV_FILE": str(tmp_path / "none.env"),
        "WEB_HOST": "0.0.0.0",
        "WEB_PORT": str(port),
        "WEB_ALLOW_OPEN": "true",
    }
    env.pop("API_TOKEN", None)
    with (tmp_path / "web.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "web"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:

        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "web.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 30.0, step=0.1, what="python -m web to serve")
        assert "API_TOKEN is not set" in (tmp_path / "web.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
