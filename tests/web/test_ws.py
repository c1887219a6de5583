"""/ws over a real uvicorn: the seed's client, filters, resume, gaps, slow clients, many
clients, a Redis restart, pings, and every authentication refusal.

The seed flow runs real monitors (Celery worker, beat, simulator); the relay-focused
cases publish entries the way monitors do (tests/web/producer.py) so they can make many
entries, or exact ones, at once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from harness.polling import wait_for
from harness.redis_server import PrivateRedis
from harness.seed import ROUTER_PASSWORD
from harness.web import Uvicorn, serving
from settings import load_settings
from tasks import keys
from tests.tasks.engine import Engine
from tests.tasks.streams import id_ms, stream_entries
from tests.web.producer import AlertProducer, Producer, RouterProducer
from tests.web.rawws import RawWebSocket
from web.auth import COOKIE, issue_cookie

pytestmark = pytest.mark.anyio

TOKEN = "ws-t0ken-Zq81x-Ry5Tb2Nk8Wd4Fh7Ls1G"
SEED_FIELDS = (
    "customer_id",
    "customer_name",
    "username",
    "service_type",
    "interface",
    "rx_bits_per_second",
    "tx_bits_per_second",
    "download_speed",
    "upload_speed",
    "timestamp",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=4, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=8, name="ws-mon")
    eng.start_worker("default", concurrency=2, name="ws-ctl")
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def open_server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    """Without API_TOKEN: how a seed dashboard meets it. App pings every second; a client
    may fall 500 entries behind before it is closed (5,000 by default)."""
    env = {**engine.env, "WS_PING_INTERVAL": "1", "WS_MAX_PENDING": "500"}
    with serving(env, tmp_path_factory.mktemp("ws") / "open.log") as server:
        yield server


@pytest.fixture(scope="module")
def locked_server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {**engine.env, "API_TOKEN": TOKEN, "ALLOWED_ORIGINS": "https://noc.example.net"}
    with serving(env, tmp_path_factory.mktemp("ws") / "locked.log") as server:
        yield server


def ws_url(server: Uvicorn, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/ws{('?' + query) if query else ''}"


async def next_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), timeout)
    value = json.loads(message)
    assert isinstance(value, dict)
    return value


async def until(ws: ClientConnection, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Messages up to and including the first that matches (pings skipped)."""
    seen: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no matching message in {timeout}s; saw {[m.get('type') for m in seen]}"
        message = await next_json(ws, remaining)
        if message.get("type") == "ping":
            continue
        seen.append(message)
        if predicate(message):
            return seen


def stream_ids(client: redis.Redis, customer_id: str) -> list[str]:
    return [i.decode() for i, _ in stream_entries(client.xrange(keys.customer_stream(customer_id)))]


# -- the seed's dashboard -------------------------------------------------------------------


async def test_ws_seed_client_without_parameters_gets_samples_and_events(
    engine: Engine, open_server: Uvicorn
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    async with connect(ws_url(open_server)) as ws:
        async with httpx.AsyncClient(base_url=open_server.url) as http:
            started = await http.post("/api/monitor/start", params={"customer_id": cid})
            assert started.status_code == 200 and started.json()["message"] == "Monitoring started"
            seen = await until(ws, lambda m: m.get("customer_id") == cid and m.get("type") == "traffic")
            sample = seen[-1]
            assert all(field in sample for field in SEED_FIELDS), sample
            assert sample["id"] and sample["download_speed"].endswith("bps")
            assert sample["download_bps"] == int(sample["tx_bits_per_second"])  # the customer's download
            assert any(m.get("type") == "started" and m["customer_id"] == cid for m in seen)
            await http.post("/api/monitor/stop", params={"customer_id": cid})
            stopped = await until(ws, lambda m: m.get("customer_id") == cid and m.get("type") == "stopped")
            assert stopped[-1]["reason"] and "rx_bits_per_second" not in stopped[-1]  # events carry no rates


async def test_ws_filters_by_customer_and_type(engine: Engine, open_server: Uvicorn) -> None:
    mine, other = (engine.customer_id(u) for u in engine.usernames("pppoe")[1:3])
    async with (
        connect(ws_url(open_server, f"customer_id={mine}")) as only_mine,
        connect(ws_url(open_server, f"customer_id={mine}&types=events")) as my_events,
        httpx.AsyncClient(base_url=open_server.url) as http,
    ):
        for cid in (mine, other):
            await http.post("/api/monitor/start", params={"customer_id": cid})
        seen = await until(only_mine, lambda m: m.get("type") == "traffic")
        seen += await until(only_mine, lambda m: m.get("type") == "traffic")
        assert {m["customer_id"] for m in seen} == {mine}
        events = await until(my_events, lambda m: m.get("type") == "started")
        assert all(m["type"] != "traffic" and m["customer_id"] == mine for m in events)
        for cid in (mine, other):
            await http.post("/api/monitor/stop", params={"customer_id": cid})
        await until(my_events, lambda m: m.get("type") == "stopped")


async def test_ws_resume_after_a_disconnect_gets_everything_missed_once_in_order(
    engine: Engine, open_server: Uvicorn
) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[3])
    async with httpx.AsyncClient(base_url=open_server.url) as http:
        await http.post("/api/monitor/start", params={"customer_id": cid})
        try:
            async with connect(ws_url(open_server, f"customer_id={cid}")) as ws:
                last = (await until(ws, lambda m: m.get("type") == "traffic"))[-1]["id"]
            # Away while the monitor keeps producing.
            wait_for(
                lambda: len([i for i in stream_ids(engine.redis, cid) if i > last]) >= 3,
                10.0,
                what="three entries produced while away",
            )
            async with connect(ws_url(open_server, f"customer_id={cid}&last_id={last}")) as ws:
                got = await until(ws, lambda m: m.get("type") == "traffic" and m["id"] > last)
                # keep reading until we are past what was retained when we looked
                target = stream_ids(engine.redis, cid)[-1]
                if got[-1]["id"] < target:
                    got += await until(ws, lambda m: m["id"] >= target)
            ids = [m["id"] for m in got]
            expected = [i for i in stream_ids(engine.redis, cid) if last < i <= ids[-1]]
            assert ids == expected  # every entry after `last`, in order, none twice
        finally:
            await http.post("/api/monitor/stop", params={"customer_id": cid})


async def test_ws_resume_from_a_trimmed_id_gets_one_gap_frame_first(
    engine: Engine, open_server: Uvicorn
) -> None:
    alice = str(uuid.uuid4())
    producer = Producer(engine.redis)
    old = producer.sample(alice)
    for _ in range(6):
        producer.sample(alice)
    engine.redis.xtrim(keys.customer_stream(alice), maxlen=2, approximate=False)
    kept = stream_ids(engine.redis, alice)
    async with connect(ws_url(open_server, f"customer_id={alice}&last_id={old}")) as ws:
        gap = await next_json(ws)
        assert gap == {"type": "gap", "from": old, "to": kept[0]}
        assert [(await next_json(ws))["id"] for _ in kept] == kept


async def test_ws_app_ping_and_pong(open_server: Uvicorn) -> None:
    async with connect(ws_url(open_server, f"customer_id={uuid.uuid4()}")) as ws:
        assert (await next_json(ws, 5.0)) == {"type": "ping"}  # WS_PING_INTERVAL=1 here
        await ws.send(json.dumps({"type": "ping"}))
        assert {"type": "pong"} in [await next_json(ws, 5.0) for _ in range(2)]


# -- many and slow clients ------------------------------------------------------------------


async def test_ws_slow_client_is_closed_1013_while_another_keeps_every_entry(
    engine: Engine, open_server: Uvicorn
) -> None:
    flood, watched = str(uuid.uuid4()), str(uuid.uuid4())
    producer = Producer(engine.redis)
    closed_before = _metric(open_server, "mtmon_ws_clients_closed_slow_total")
    # A client that stops reading its socket, like a dashboard on a dead network.
    slow = RawWebSocket("127.0.0.1", open_server.port, "/ws")
    try:
        async with connect(ws_url(open_server, f"customer_id={watched}")) as steady:
            # Flood until the server gives up on the slow client: its outbox overflows, or
            # one frame cannot leave within SEND_TIMEOUT (10 s) because its socket is full.
            deadline = asyncio.get_running_loop().time() + 90
            while _metric(open_server, "mtmon_ws_clients_closed_slow_total") == closed_before:
                assert asyncio.get_running_loop().time() < deadline, "the slow client was never closed"
                for _ in range(1000):
                    producer.sample(flood)
                want = producer.sample(watched)
                got = await until(steady, lambda m, w=want: m["id"] == w)
                assert [m["id"] for m in got] == [want], got  # nothing lost, nothing extra
        # The slow client gets what was buffered for it, then the close frame.
        frames = list(slow.frames())
        opcode, payload = frames[-1]
        assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1013, frames[-1]
        reason = payload[2:].decode()
        delivered = [json.loads(p)["id"] for op, p in frames[:-1] if op == 0x1 and b'"id"' in p]
        # It is told to resume exactly after the last entry it received.
        assert reason == f"too slow: reconnect with last_id={delivered[-1]}"
    finally:
        slow.close()


async def test_ws_two_hundred_clients_on_one_process(engine: Engine, open_server: Uvicorn) -> None:
    customers = [str(uuid.uuid4()) for _ in range(4)]
    producer = Producer(engine.redis)
    urls = [ws_url(open_server, f"customer_id={customers[i % 4]}" if i % 2 else "") for i in range(200)]
    clients = [await connect(url) for url in urls]
    try:
        wait_for(lambda: _metric(open_server, "mtmon_ws_clients") >= 200, 10.0, what="200 clients counted")
        ids = {c: producer.sample(c) for c in customers}
        newest = max(ids.values())
        for i, ws in enumerate(clients):
            if i % 2:  # filtered: its one customer's entry
                want = ids[customers[i % 4]]
                got = await until(ws, lambda m, w=want: m["id"] == w)
                assert [m["id"] for m in got] == [want]
            else:  # everything: all four, in order
                got = await until(ws, lambda m: m["id"] == newest)
                assert [m["id"] for m in got] == sorted(ids.values())
    finally:
        await asyncio.gather(*(ws.close() for ws in clients))
    wait_for(lambda: _metric(open_server, "mtmon_ws_clients") == 0, 10.0, what="every client gone")


async def test_ws_clients_keep_receiving_across_a_redis_restart(engine: Engine, tmp_path: Path) -> None:
    server_redis = PrivateRedis(tmp_path).start()
    env = {**engine.env, "REDIS_URL": server_redis.url}
    alice = str(uuid.uuid4())
    try:
        with serving(env, tmp_path / "uvicorn.log") as server:
            async with connect(ws_url(server)) as ws:
                first = Producer(redis.Redis.from_url(server_redis.url)).sample(alice)
                await until(ws, lambda m: m["id"] == first)
                server_redis.stop()
                server_redis.start()  # everything lost, as after a restart without persistence
                producer = Producer(redis.Redis.from_url(server_redis.url))
                after = [producer.sample(alice) for _ in range(3)]
                got = await until(ws, lambda m: m["id"] == after[-1], timeout=30.0)
                assert [m["id"] for m in got if m.get("type") != "ping"] == after
    finally:
        server_redis.stop()


# -- authentication -------------------------------------------------------------------------


async def _refused(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, **kwargs):
            pass
    return refused.value.response.status_code


async def test_ws_refusals_happen_before_accept(locked_server: Uvicorn) -> None:
    url = ws_url(locked_server)
    assert await _refused(url) == 401
    assert await _refused(url, additional_headers={"Authorization": "Bearer wrong"}) == 401
    assert await _refused(url + f"?token={TOKEN}") == 401  # never a token in the query string
    assert (
        await _refused(url, subprotocols=[Subprotocol(f"bearer.{TOKEN}")]) == 401
    )  # no non-secret one to echo
    assert await _refused(url, origin=Origin("https://evil.example.com")) == 403
    expired = issue_cookie(load_settings({"API_TOKEN": TOKEN}, "/nonexistent"), now=1_000_000_000)
    assert await _refused(url, additional_headers={"Cookie": f"{COOKIE}={expired}"}) == 401
    assert await _refused(ws_url(locked_server, "customer_id=nope"), additional_headers=_bearer()) == 400


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def test_ws_accepts_header_subprotocol_cookie_and_allowed_origins(locked_server: Uvicorn) -> None:
    url = ws_url(locked_server, f"customer_id={uuid.uuid4()}")
    async with connect(url, additional_headers=_bearer()) as ws:
        assert ws.subprotocol is None
    async with connect(
        url, subprotocols=[Subprotocol("monitor.v1"), Subprotocol(f"bearer.{TOKEN}")]
    ) as ws:  # what browsers do
        assert ws.subprotocol == "monitor.v1"  # never the one holding the token
    async with connect(url, additional_headers=_bearer(), origin=Origin("https://noc.example.net")) as ws:
        assert ws.subprotocol is None
    host = f"http://127.0.0.1:{locked_server.port}"
    async with connect(url, additional_headers=_bearer(), origin=Origin(host)) as ws:  # the app's own page
        assert ws.subprotocol is None
    with httpx.Client(base_url=locked_server.url) as http:
        assert http.post("/api/session", json={"token": "wrong"}).status_code == 401
        login = http.post("/api/session", json={"token": TOKEN})
        assert login.status_code == 200
        cookie = login.cookies[COOKIE]
        set_cookie = login.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "max-age=" in set_cookie
    async with connect(url, additional_headers={"Cookie": f"{COOKIE}={cookie}"}, origin=Origin(host)) as ws:
        assert ws.subprotocol is None


def test_ws_rest_needs_the_token_and_logout_forgets_the_session(locked_server: Uvicorn) -> None:
    with httpx.Client(base_url=locked_server.url) as http:
        assert http.get("/health").status_code == 200  # public
        assert http.get("/api/session").json() == {
            "status": "ok",
            "auth": "enabled",
            "authenticated": False,
            "diagnosis": {"rtt_rise_ms": 30, "min_probes": 5},  # the dashboard's verdict thresholds
        }
        denied = http.get("/api/monitor/status")
        assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/api/monitor/status", headers=_bearer()).status_code == 200
        assert http.get("/metrics").status_code == 401
        http.post("/api/session", json={"token": TOKEN})
        assert http.get("/api/monitor/status").status_code == 200  # the cookie
        assert http.get("/api/session").json()["authenticated"] is True
        http.delete("/api/session")
        http.cookies.clear()
        assert http.get("/api/monitor/status").status_code == 401
    # The one request that put the token in its own query string (refused above) is in the
    # access log as the client sent it; nothing else may show the token.
    log = "\n".join(line for line in locked_server.log().splitlines() if "/ws?token=" not in line)
    assert TOKEN not in log and ROUTER_PASSWORD not in log
    assert "API_TOKEN is not set" not in log
    assert "ERROR" not in log  # refusing a handshake is routine, not an error


def test_ws_open_server_warns_that_auth_is_off(open_server: Uvicorn) -> None:
    assert "API_TOKEN is not set" in open_server.log()
    assert httpx.get(f"{open_server.url}/api/session").json()["auth"] == "disabled"


# -- metrics --------------------------------------------------------------------------------


def _metric(server: Uvicorn, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics", headers=_bearer(), timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_ws_metrics_parse_and_move(engine: Engine, open_server: Uvicorn) -> None:
    before = _metric(open_server, "mtmon_ws_frames_sent_total")
    alice = str(uuid.uuid4())
    async with connect(ws_url(open_server, f"customer_id={alice}")) as ws:
        sent = Producer(engine.redis).sample(alice)
        await until(ws, lambda m: m["id"] == sent)
    assert _metric(open_server, "mtmon_ws_frames_sent_total") > before
    assert _metric(open_server, "mtmon_relay_lag_seconds_count") > 0
    assert _metric(open_server, "mtmon_http_requests_total", route="/metrics", status="200") >= 1
    assert _metric(open_server, "mtmon_monitor_capacity") == 50
    assert _metric(open_server, "mtmon_monitor_starts_total", result="started") >= 1


def test_ws_cli_drives_a_running_api_with_its_token(engine: Engine, locked_server: Uvicorn) -> None:
    import subprocess
    import sys

    from harness.process import ROOT

    username = engine.usernames("pppoe")[2]
    env = {**engine.env, "API_TOKEN": TOKEN}

    def mtmon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", "--api", locked_server.url, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    started = mtmon("start", username)
    assert started.returncode == 0 and started.stdout.startswith("started: session "), started
    try:
        watched = mtmon("watch", username, "--seconds", "4")
        assert watched.returncode == 0 and " down " in watched.stdout, watched
        status = json.loads(mtmon("status", "--json").stdout)
        assert username in [m["username"] for m in status["monitors"]]
    finally:
        stopped = mtmon("stop", username)
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopping: session ")
    refused = mtmon("stop", username)
    assert refused.returncode == 1 and "is not monitored (HTTP 404)" in refused.stderr
    no_token = subprocess.run(
        [sys.executable, "-m", "cli", "--api", locked_server.url, "status"],
        cwd=ROOT,
        env={k: v for k, v in engine.env.items() if k != "API_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_token.returncode == 1 and "(HTTP 401)" in no_token.stderr


async def _subscribed(ws: ClientConnection) -> None:
    """The server answers a ping only once the connection's subscription is in place."""
    await ws.send('{"type":"ping"}')
    await until(ws, lambda m: m.get("type") == "pong")


async def test_ws_top_frames_and_session_events_by_router_only_when_asked(
    engine: Engine, open_server: Uvicorn
) -> None:
    r1, r2 = RouterProducer(engine.redis, "ws-r1"), RouterProducer(engine.redis, "ws-r2")
    customer = str(uuid.uuid4())
    async with (
        connect(ws_url(open_server, "types=top&router=ws-r1")) as r1_tops,
        connect(ws_url(open_server, "types=sessions,top")) as routers,
        connect(ws_url(open_server, f"customer_id={customer}")) as seed_like,
    ):
        for ws in (r1_tops, routers, seed_like):
            await _subscribed(ws)
        sent = [r2.top(customer), r1.session(customer), r1.top(customer, 123)]
        frame = (await until(r1_tops, lambda m: m.get("type") == "top"))[-1]
        assert frame["id"] == sent[2] and frame["router"] == "ws-r1"
        assert frame["top"][0]["download_bps"] == 123 and frame["online"] == 1
        seen = await until(routers, lambda m: m.get("id") == sent[2])
        assert [m["id"] for m in seen] == sent
        Producer(engine.redis).event(customer)
        (event,) = await until(seed_like, lambda m: True)
        assert event["type"] == "offline"  # nothing of the routers' before it
    assert await _refused(ws_url(open_server, "types=top,bogus")) == 400
    assert await _refused(ws_url(open_server, "router=ws-r1")) == 400  # router= without its types


async def test_ws_alert_events_only_when_asked_and_resumed_by_id(
    engine: Engine, open_server: Uvicorn
) -> None:
    customer, other = str(uuid.uuid4()), str(uuid.uuid4())
    alerts, producer = AlertProducer(engine.redis), Producer(engine.redis)
    async with (
        connect(ws_url(open_server, "types=alerts")) as only_alerts,
        # The dashboard's feed: its panels' customers, and every alert.
        connect(ws_url(open_server, f"customer_id={customer}&types=traffic,events,alerts")) as dashboard,
        connect(ws_url(open_server, f"customer_id={other}")) as seed_like,
    ):
        for ws in (only_alerts, dashboard, seed_like):
            await _subscribed(ws)
        fired = alerts.event("alert_firing", "c1", customer_id=other)
        acked = alerts.event("alert_acknowledged", "c1", customer_id=other)
        sample = producer.sample(customer)
        got = await until(only_alerts, lambda m: m.get("id") == acked)
        assert [(m["type"], m["alert_id"], m["customer_id"]) for m in got] == [
            ("alert_firing", "c1", other),
            ("alert_acknowledged", "c1", other),
        ]
        assert got[1]["acknowledged_by"] == "api" and got[1]["resolved_at"] is None
        # Ids are per stream: an alert and a sample of the same millisecond may share one,
        # so frames are told apart by (type, id), and their order across the two streams
        # is only that of their ids.
        wanted = {("alert_firing", fired), ("alert_acknowledged", acked), ("traffic", sample)}
        got_pairs: list[tuple[str, str]] = []
        while not wanted <= set(got_pairs):
            got_pairs += [(m["type"], m["id"]) for m in await until(dashboard, lambda m: True)]
        assert sorted(got_pairs) == sorted(wanted)  # another customer's alert too, each once
        alert_ids = [i for t, i in got_pairs if t.startswith("alert_")]
        assert alert_ids == [fired, acked]
        producer.event(other)
        (event,) = await until(seed_like, lambda m: True)
        assert event["type"] == "offline"  # never an alert to a client that did not ask
    # Away: a router's alert resolves; resuming from the last id gets it. The alerts of
    # that id's millisecond come again (web/relay.py: none is missed, some may repeat).
    resolved = alerts.event("alert_resolved", "c2", router="ws-r1")
    async with connect(ws_url(open_server, f"types=alerts&last_id={acked}")) as ws:
        *again, frame = await until(ws, lambda m: m.get("id") == resolved)
        assert {m["id"] for m in again} <= {fired, acked}
        assert all(id_ms(m["id"]) == id_ms(acked) for m in again)
        assert frame["type"] == "alert_resolved" and frame["subject"] == "router:ws-r1"
        assert frame["customer_id"] is None and frame["resolved_at"]
    assert await _refused(ws_url(open_server, "types=alerts,bogus")) == 400
