"""/ws at its edges over a real uvicorn, fed by entries published the way monitors
publish them: binary frames, silent clients, the connection cap, refused handshakes
that say why in the log, and the seed's test page opened from file://."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from harness.polling import wait_for
from harness.process import ROOT
from harness.web import Uvicorn, serving
from tests.web.browser import launch_chromium
from tests.web.producer import Producer
from tests.web.rawws import RawWebSocket
from tests.web.webdb import WebDb

pytestmark = pytest.mark.anyio

CAP = 3
TEST_PAGE = ROOT / "docs" / "ws-test.html"
CRASHES = ("Exception in ASGI application", "Traceback")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    """Protocol pings every half second, half a second to answer; three connections."""
    env = {**os.environ, "WS_MAX_CONNECTIONS": str(CAP)}
    with serving(env, tmp_path_factory.mktemp("wsedge") / "uvicorn.log", ws_ping=0.5) as served:
        yield served


@pytest.fixture(scope="module")
def file_server(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {**os.environ, "ALLOWED_ORIGINS": "null"}
    with serving(env, tmp_path_factory.mktemp("wsedge") / "file.log") as served:
        yield served


def _close_code(raw: RawWebSocket) -> int:
    for opcode, payload in raw.frames(timeout=10):
        if opcode == 0x8:
            code: int = struct.unpack(">H", payload[:2])[0]
            return code
    raise AssertionError("the server never sent a close frame")


def _assert_no_crash(server: Uvicorn) -> None:
    log = server.log()
    assert not any(crash in log for crash in CRASHES), log[-3000:]


def test_ws_binary_frame_is_closed_1003_without_a_traceback(server: Uvicorn) -> None:
    raw = RawWebSocket("127.0.0.1", server.port, "/ws")
    try:
        raw.send(0x1, ("[" * 60_000).encode())  # nested far too deep for a ping: ignored
        raw.send(0x2, b"\x00\x01\x02")
        assert _close_code(raw) == 1003
    finally:
        raw.close()
    _assert_no_crash(server)


def test_ws_client_that_never_answers_pings_is_closed_1011(server: Uvicorn) -> None:
    raw = RawWebSocket("127.0.0.1", server.port, "/ws")
    try:
        opcodes = []
        for opcode, payload in raw.frames(timeout=10):
            opcodes.append(opcode)
            if opcode == 0x8:
                assert struct.unpack(">H", payload[:2])[0] == 1011
                break
        assert 0x9 in opcodes and opcodes[-1] == 0x8  # pinged, then closed
    finally:
        raw.close()
    wait_for(lambda: server.log().count("WebSocket /ws") >= 1, 5.0, what="uvicorn's access line")
    _assert_no_crash(server)


async def test_ws_connections_over_the_cap_are_closed_1013_and_logged(server: Uvicorn) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws"
    held = [await connect(url) for _ in range(CAP)]
    try:
        async with connect(url) as extra:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(extra.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert "too many connections" in closed.value.rcvd.reason
        await held.pop().close()

        async def one_more_fits() -> bool:
            try:
                async with connect(url) as again:
                    await again.send(json.dumps({"type": "ping"}))
                    reply = json.loads(await asyncio.wait_for(again.recv(), 5))
                    return bool(reply["type"] in ("pong", "ping"))
            except ConnectionClosed:
                return False  # closed 1013: the server has not yet seen the other close

        for _ in range(50):
            if await one_more_fits():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("a slot freed by a close was never reused")
    finally:
        for ws in held:
            await ws.close()
    wait_for(lambda: "cap:" in server.log(), 5.0, what="the cap's log line")
    line = next(line for line in server.log().splitlines() if "cap:" in line)
    assert line.startswith("WARNING") and "127.0.0.1:" in line and "WS_MAX_CONNECTIONS" in line


async def test_ws_every_refused_handshake_logs_one_warning_with_reason_and_peer(server: Uvicorn) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws"
    before = server.log().count("ws: refused a handshake")
    for kwargs, query, status in (
        ({"origin": Origin("https://evil.example")}, "", 403),
        ({"origin": Origin("null")}, "", 403),
        ({}, "?customer_id=nope", 400),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url + query, **kwargs):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == status
    wait_for(lambda: server.log().count("ws: refused a handshake") == before + 3, 5.0, what="three warnings")
    lines = [line for line in server.log().splitlines() if "ws: refused a handshake" in line][before:]
    assert all(line.startswith("WARNING") and "from 127.0.0.1:" in line for line in lines), lines
    assert "'https://evil.example' not allowed" in lines[0]
    assert "file://" in lines[1] and "ALLOWED_ORIGINS=null" in lines[1]
    assert "customer_id" in lines[2]


def test_ws_seed_test_page_from_file_connects_when_null_is_allowed(
    server: Uvicorn, file_server: Uvicorn, web_db: WebDb
) -> None:
    """The seed's Testing step: a page opened from disk. Refused by default (the log says
    why and how to allow it), live with ALLOWED_ORIGINS=null."""
    customer = str(uuid.uuid4())
    producer = Producer(web_db.redis)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(f"{TEST_PAGE.as_uri()}?url=ws://127.0.0.1:{server.port}/ws")
            page.wait_for_selector("#status.closed", timeout=10_000)
            assert "1006" in page.inner_text("#status")
            wait_for(lambda: "ALLOWED_ORIGINS=null" in server.log(), 5.0, what="the refusal's reason")

            page.goto(f"{TEST_PAGE.as_uri()}?url=ws://127.0.0.1:{file_server.port}/ws")
            page.wait_for_selector("#status.open", timeout=10_000)
            producer.sample(customer)
            page.wait_for_function(
                f"document.getElementById('log').textContent.includes('{customer}')", timeout=10_000
            )
            frame = json.loads(page.inner_text("#log").splitlines()[0])
            assert frame["customer_id"] == customer and "download_speed" in frame
            (ROOT / "var" / "screenshots").mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ROOT / "var" / "screenshots" / "ws-test-page.png"))
        finally:
            browser.close()
    _assert_no_crash(file_server)
