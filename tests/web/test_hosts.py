"""web.hosts: the Host check that stops DNS rebinding, and open mode served on loopback
only. Tried from outside over a real uvicorn; the arrival-address rule in-process, where
a non-loopback address is only named (this machine sends traffic to loopback only)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from harness.polling import wait_for
from harness.web import Uvicorn, serving
from settings import load_settings
from tests.web.responses import assert_error
from tests.web.webdb import WebDb
from web.app import create_app

TOKEN = "hosts-t0ken-Vb7Nq2Xc5Lk9Jw3Rt6Zp"
ELSEWHERE = "http://10.20.30.40"  # named in the ASGI scope only; nothing is sent there


@pytest.fixture(scope="module")
def server(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {**os.environ, "TRUSTED_HOSTS": "noc.example.net, *.isp.example"}
    with serving(env, tmp_path_factory.mktemp("hosts") / "uvicorn.log") as served:
        yield served


def _get(server: Uvicorn, host: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        return client.get("/api/customers", headers={"Host": host})


def test_hosts_rebound_name_is_refused_with_the_error_shape_and_a_warning(server: Uvicorn) -> None:
    body = assert_error(_get(server, "attacker.example"), 400, "invalid_host")
    assert "attacker.example" in body["message"] and "TRUSTED_HOSTS" in body["message"]
    wait_for(lambda: "attacker.example" in server.log(), 5.0, what="the refusal's log line")
    line = next(line for line in server.log().splitlines() if "attacker.example" in line)
    assert "WARNING" in line and "127.0.0.1:" in line  # the level and the peer


def test_hosts_loopback_own_address_and_trusted_names_are_served(server: Uvicorn) -> None:
    port = server.port
    served = [f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "noc.example.net", "NOC.example.net."]
    served += ["a.isp.example", "b.c.isp.example:443"]
    for host in served:
        assert _get(server, host).status_code == 200, host
    for host in ("isp.example", "noc.example.net.attacker.example", "attacker.example:" + str(port), "x"):
        assert_error(_get(server, host), 400, "invalid_host")


def test_hosts_websocket_handshake_with_a_rebound_name_is_refused(server: Uvicorn) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: attacker.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    wait_for(lambda: "WebSocket handshake /ws" in server.log(), 5.0, what="the handshake refusal's log line")


def test_hosts_open_mode_answers_on_loopback_only(web_db: WebDb) -> None:
    """Without API_TOKEN, a request that arrived on a non-loopback address is refused
    (however uvicorn was bound), unless WEB_ALLOW_OPEN says so; a token lifts it."""
    with TestClient(create_app(load_settings(dict(os.environ))), base_url=ELSEWHERE) as client:
        body = assert_error(client.get("/api/customers"), 403, "open_mode_loopback_only")
        assert "API_TOKEN" in body["message"] and "WEB_ALLOW_OPEN" in body["message"]
    allowed = load_settings({**os.environ, "WEB_ALLOW_OPEN": "true"})
    with TestClient(create_app(allowed), base_url=ELSEWHERE) as client:
        assert client.get("/api/customers").status_code == 200  # Host is the arrival address
        assert_error(client.get("/api/customers", headers={"Host": "attacker.example"}), 400, "invalid_host")
    locked = load_settings({**os.environ, "API_TOKEN": TOKEN})
    with TestClient(create_app(locked), base_url=ELSEWHERE) as client:
        assert client.get("/api/customers", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
