"""web.throttle: wrong tokens counted per address, 429 with Retry-After, and the right
token working again once the window has passed. The class on its own clock; then every
place a token is tried (login, bearer header, WebSocket subprotocol) over a real uvicorn."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from harness.polling import wait_for
from harness.web import Uvicorn, serving
from tests.web.responses import assert_error
from tests.web.webdb import WebDb
from web.throttle import MAX_ADDRESSES, AuthThrottle

TOKEN = "throttle-t0ken-Gh4Kw8Pz1Xq6Tn3Vb9"
WINDOW = 3.0
MAX_FAILURES = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_blocks_after_the_limit_until_the_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    throttle = AuthThrottle(3, 60.0, clock)
    for _ in range(2):
        throttle.failed("10.0.0.1")
        clock.now += 10
    assert throttle.retry_after("10.0.0.1") is None  # two of three
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 40  # the first failure leaves at 1060
    assert throttle.retry_after("10.0.0.2") is None  # per address
    clock.now += 40
    assert throttle.retry_after("10.0.0.1") is None


def test_throttle_remembers_a_bounded_number_of_addresses() -> None:
    throttle = AuthThrottle(1, 60.0, Clock())
    for i in range(MAX_ADDRESSES + 50):
        throttle.failed(f"a{i}")
    assert throttle.retry_after("a0") is None  # the least recently failed were forgotten
    assert throttle.retry_after(f"a{MAX_ADDRESSES + 49}") == 60


@pytest.fixture(scope="module")
def server(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {
        **os.environ,
        "API_TOKEN": TOKEN,
        "AUTH_MAX_FAILURES": str(MAX_FAILURES),
        "AUTH_FAILURE_WINDOW": str(WINDOW),
    }
    with serving(env, tmp_path_factory.mktemp("throttle") / "uvicorn.log") as served:
        yield served


def _wait_out(client: httpx.Client) -> None:
    """Until the right token works again (polling with it is never counted)."""
    wait_for(
        lambda: client.post("/api/session", json={"token": TOKEN}).status_code == 200,
        WINDOW + 5,
        step=0.2,
        what="the window to pass",
    )


def test_throttle_forty_wrong_logins_get_429_then_the_right_token_works_after_the_window(
    server: Uvicorn,
) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        statuses = [client.post("/api/session", json={"token": f"guess-{i}"}).status_code for i in range(40)]
        assert statuses == [401] * MAX_FAILURES + [429] * (40 - MAX_FAILURES)
        blocked = client.post("/api/session", json={"token": TOKEN})  # right, but too soon
        body = assert_error(blocked, 429, "too_many_attempts")
        assert 1 <= int(blocked.headers["retry-after"]) <= WINDOW and body["retry_after"] >= 1
        assert TOKEN not in blocked.text
        started = time.monotonic()
        _wait_out(client)
        assert time.monotonic() - started >= 1.0  # it did have to wait


def test_throttle_wrong_bearer_headers_count_and_block_the_api(server: Uvicorn) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        _wait_out(client)
        client.cookies.clear()  # the bearer header alone
        wrong = {"Authorization": "Bearer not-the-token"}
        assert [client.get("/api/customers", headers=wrong).status_code for _ in range(MAX_FAILURES)] == [
            401
        ] * MAX_FAILURES
        right = {"Authorization": f"Bearer {TOKEN}"}
        response = client.get("/api/customers", headers=right)
        assert_error(response, 429, "too_many_attempts")
        assert int(response.headers["retry-after"]) >= 1
        _wait_out(client)
        assert client.get("/api/customers", headers=right).status_code == 200


def _handshake_status(url: str, protocols: list[str]) -> int:
    try:
        with connect(url, subprotocols=[Subprotocol(p) for p in protocols], open_timeout=10):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def test_throttle_a_websocket_handshake_is_one_attempt_whatever_it_offers(server: Uvicorn) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws"
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        _wait_out(client)
        many = ["monitor.v1", *(f"bearer.guess-{i}" for i in range(50))]
        assert _handshake_status(url, many) == 400  # one bearer subprotocol per handshake
        statuses = [_handshake_status(url, ["monitor.v1", f"bearer.guess-{i}"]) for i in range(MAX_FAILURES)]
        assert statuses == [401] * MAX_FAILURES
        assert _handshake_status(url, ["monitor.v1", f"bearer.{TOKEN}"]) == 429
        assert client.post("/api/session", json={"token": TOKEN}).status_code == 429  # one count for all
        _wait_out(client)
        assert _handshake_status(url, ["monitor.v1", f"bearer.{TOKEN}"]) == 101
    log = server.log()
    assert "too many wrong tokens" in log and TOKEN not in log
