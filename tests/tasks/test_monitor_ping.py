"""The monitor's router-side ping, with real processes: latency entries beside the
samples (PPPoE and static customers), timeouts while the line is down and a new ping
after it dials in again, ping=false, ping entries ending with the monitor, and one
ping per monitor whatever the deliveries; /ws relays them to clients that ask."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from harness.polling import wait_for
from harness.web import Uvicorn, serving
from tasks import lifecycle, runtime, service
from tasks.lifecycle import Token
from tasks.targets import resolve_customer
from tests.services import TEST_REDIS_URL
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor
from tests.tasks.pings import latency_entries, pings_issued, pings_running, started_event, wait_latency
from tests.tasks.streams import Predicate, customer_entries, id_ms, redis_ms, session_samples, wait_entry
from web.queries.monitors import newest_entry_times

REFUSED = "not claimed, this delivery ends"


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=6, hotspot=0, static=2, MONITOR_PING="true")
    eng.start_worker("monitors", concurrency=8, name="ping-mon")
    eng.start_worker("default", concurrency=2, name="ping-ctl")
    eng.start_beat()
    yield eng


def _stop(eng: Engine, customer_id: str) -> dict[str, Any]:
    service.stop(customer_id, requested_by="test")
    return wait_entry(eng.redis, customer_id, lambda e: e["type"] == "stopped", 10.0, "stopped")


def _sample_with_rtt(session_id: str) -> Predicate:
    return lambda e: e["type"] == "traffic" and e["session_id"] == session_id and e["rtt_ms"] is not None


def _newest_entry_time(customer_id: str) -> str | None:
    async def read() -> str | None:
        client = aioredis.Redis.from_url(TEST_REDIS_URL)
        try:
            return (await newest_entry_times(client, [customer_id]))[customer_id]
        finally:
            await client.aclose()

    return asyncio.run(read())


def _no_pings_left(eng: Engine) -> None:
    wait_for(lambda: pings_running(eng) == 0, 5.0, what="every ping cancelled")


def test_monitor_ping_latency_entries_beside_the_samples_of_pppoe_and_static_customers(
    engine: Engine,
) -> None:
    pppoe = engine.usernames("pppoe")[0]
    static = engine.usernames("static_ip")[0]
    for username in (pppoe, static):
        cid = engine.customer_id(username)
        monitor = start_monitor(engine, cid, requested_by="test")
        try:
            assert started_event(engine.redis, cid, monitor.session_id)["ping"] == "on"
            replies = wait_latency(engine.redis, cid, monitor.session_id, 3, 10.0)
            for reply in replies:
                assert isinstance(reply["rtt_ms"], float) and reply["rtt_ms"] > 0
                assert reply["status"] is None and reply["loss_pct"] == 0.0
                assert isinstance(reply["ping_seq"], int) and "seq" not in reply
                assert reply["fence"] == monitor.fence and reply["customer_id"] == cid
                ipaddress.ip_address(reply["address"])
            if username == static:
                assert replies[0]["address"] == engine.customers[static]["static_ip"]
            assert [r["ping_seq"] for r in replies] == sorted(r["ping_seq"] for r in replies)
            # The samples carry the latest answer's RTT once there is one.
            sample = wait_entry(
                engine.redis, cid, _sample_with_rtt(monitor.session_id), 5.0, "a sample with rtt_ms"
            )
            answers = {r["rtt_ms"] for r in latency_entries(engine.redis, cid, monitor.session_id)}
            assert sample["rtt_ms"] in answers
            # The session's seq still counts its samples and events one by one.
            seqs = [e["seq"] for e in customer_entries(engine.redis, cid) if "seq" in e]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        finally:
            _stop(engine, cid)
    _no_pings_left(engine)


def test_monitor_ping_times_out_while_the_pppoe_session_is_down_and_starts_again_after(
    engine: Engine,
) -> None:
    username = engine.usernames("pppoe")[1]
    cid = engine.customer_id(username)
    monitor = start_monitor(engine, cid, requested_by="test")
    try:
        wait_latency(engine.redis, cid, monitor.session_id, 2, 10.0, status=None)
        engine.sim.reset_command_counts()
        engine.sim.drop_pppoe(username)
        lost = wait_latency(engine.redis, cid, monitor.session_id, 2, 10.0, status="timeout")
        assert all(r["rtt_ms"] is None for r in lost)
        assert lost[-1]["loss_pct"] > lost[0]["loss_pct"] > 0
        assert pings_issued(engine) == 0, "a lost line keeps its ping: its probes time out"
        # The status route's last_sample_at is the newest sample or event, never a ping reply.
        wait_for(
            lambda: (
                _newest_entry_time(cid)
                == [e for e in customer_entries(engine.redis, cid) if e["type"] != "latency"][-1]["timestamp"]
            ),
            10.0,
            what="last_sample_at to skip the ping replies",
        )
        down = len(latency_entries(engine.redis, cid, monitor.session_id))
        engine.sim.restore_pppoe(username)
        # The customer dialled in again: a new session, so a new ping (the simulator gives
        # it the same address), whose replies are answered again.
        wait_for(lambda: pings_issued(engine) == 1, 20.0, what="the ping issued again")
        wait_for(
            lambda: any(
                r["status"] is None for r in latency_entries(engine.redis, cid, monitor.session_id)[down:]
            ),
            10.0,
            what="answered probes after the reconnect",
        )
        assert pings_running(engine) == 1
    finally:
        _stop(engine, cid)
    _no_pings_left(engine)


def test_monitor_ping_false_at_start_runs_without_ping(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[2])
    info = service.start(cid, requested_by="test", ping=False)
    try:
        assert started_event(engine.redis, cid, info.session_id)["ping"] == "off"
        wait_for(
            lambda: len(session_samples(engine.redis, cid, info.session_id)) >= 4,
            10.0,
            what="a few samples",
        )
        assert latency_entries(engine.redis, cid, info.session_id) == []
        assert all(s["rtt_ms"] is None for s in session_samples(engine.redis, cid, info.session_id))
        assert pings_running(engine) == 0
    finally:
        _stop(engine, cid)


def test_monitor_ping_entries_stop_within_a_second_of_the_stop(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[3])
    monitor = start_monitor(engine, cid, requested_by="test")
    wait_latency(engine.redis, cid, monitor.session_id, 3, 10.0)
    asked_ms = redis_ms(engine.redis)
    stopped = _stop(engine, cid)
    _no_pings_left(engine)
    replies = latency_entries(engine.redis, cid, monitor.session_id)
    assert max(id_ms(r["id"]) for r in replies) <= asked_ms + 1000
    assert all(r["id"] < stopped["id"] for r in replies), "no ping entry after the stopped event"


def test_monitor_ping_one_stream_per_monitor_under_a_duplicate_delivery(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[4])
    monitor = start_monitor(engine, cid, requested_by="test")
    try:
        wait_latency(engine.redis, cid, monitor.session_id, 2, 10.0)
        assert pings_running(engine) == 1
        engine.sim.reset_command_counts()
        log = engine.log_of("ping-mon")
        owner = runtime.current().semaphore.owner_of(cid)
        assert owner is not None and owner.token == monitor.token
        now = runtime.current().semaphore.now_ms()
        target = resolve_customer(cid)
        lifecycle.launch(Token(monitor.session_id, monitor.attempt), owner.fence, target, enqueued_ms=now)
        wait_for(
            lambda: engine.log_of("ping-mon").count(REFUSED) > log.count(REFUSED),
            10.0,
            what="the duplicate to be refused",
        )
        # A few more probes: still the one ping, never issued again.
        seen = len(latency_entries(engine.redis, cid, monitor.session_id))
        wait_latency(engine.redis, cid, monitor.session_id, seen + 3, 10.0)
        assert pings_running(engine) == 1 and pings_issued(engine) == 0
        fences = {r["fence"] for r in latency_entries(engine.redis, cid, monitor.session_id)}
        assert fences == {monitor.fence}
    finally:
        _stop(engine, cid)
    _no_pings_left(engine)


# -- the live feed ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    with serving(dict(engine.env), tmp_path_factory.mktemp("ping-ws") / "web.log") as web:
        yield web


async def _frames(ws: ClientConnection, count: int, kind: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Frames up to the `count`-th of type `kind` (the feed's keep-alives left out)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while sum(1 for f in seen if f["type"] == kind) < count:
        assert time.monotonic() < deadline, f"only {[f['type'] for f in seen]} in {timeout}s"
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if frame["type"] != "ping":
            seen.append(frame)
    return seen


def test_monitor_ping_ws_relays_latency_only_when_asked(engine: Engine, server: Uvicorn) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[5])
    base = f"ws://127.0.0.1:{server.port}/ws?customer_id={cid}"

    async def watch() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        async with (
            connect(f"{base}&types=latency") as pings,
            connect(base) as seed_client,
            connect(f"{base}&types=traffic") as samples,
        ):
            service.start(cid, requested_by="test")
            return (
                await _frames(pings, 3, "latency"),
                await _frames(seed_client, 4, "traffic"),
                await _frames(samples, 4, "traffic"),
            )

    try:
        latency, default, traffic = asyncio.run(watch())
    finally:
        _stop(engine, cid)
    assert {f["type"] for f in latency} == {"latency"}
    assert all(isinstance(f["rtt_ms"], float) and f["customer_id"] == cid for f in latency)
    assert "latency" not in {f["type"] for f in default} and "started" in {f["type"] for f in default}
    assert {f["type"] for f in traffic} == {"traffic"}
