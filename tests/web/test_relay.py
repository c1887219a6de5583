"""web.relay against a real Redis: fan-out, filters, resume without gap or duplicate,
gap frames, slow clients, and a reader that outlives its Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from harness.redis_server import PrivateRedis
from tasks import keys
from tests.services import TEST_REDIS_URL
from tests.tasks.streams import id_ms, redis_ms, stream_entries
from tests.web.producer import AlertProducer, Producer, RouterProducer
from web.relay import (
    ALERT_TYPE_SET,
    CATCH_UP_PAGE,
    EVENT_TYPES,
    LATENCY_TYPES,
    MERGE_PAGE_MIN,
    SESSION_EVENT_TYPES,
    TOP_TYPES,
    TRAFFIC_TYPES,
    Frame,
    Interest,
    Overflow,
    Relay,
    Subscription,
    parse_id,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def relay(redis_client: redis.Redis) -> AsyncIterator[Relay]:
    client = aioredis.Redis.from_url(TEST_REDIS_URL, socket_timeout=5)
    relay = Relay(client, block_ms=200, max_pending=50)
    task = asyncio.create_task(relay.run())
    await asyncio.wait_for(relay.started.wait(), 5)
    try:
        yield relay
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def _collect(sub: Subscription, count: int, timeout: float = 5.0) -> list[Frame]:
    frames: list[Frame] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(frames) < count:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"got {len(frames)} of {count} frames"
        frames.extend(await sub.next_batch(timeout=remaining))
    return frames


async def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll `condition` (on the relay's counters) until it holds; fail naming `what`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, (
            f"timed out after {timeout:.1f}s waiting for {what}"
        )
        await asyncio.sleep(0.02)


async def _caught_up_to(relay: Relay, entry_id: str) -> None:
    """The reader has read the combined stream up to `entry_id`: a subscriber registered
    now gets what came before only from its catch-up, never live."""
    target = parse_id(entry_id)
    await _until(
        lambda: relay.last_id is not None and parse_id(relay.last_id) >= target,
        f"the reader to reach {entry_id}",
    )


async def test_relay_fans_out_to_every_interested_subscriber(relay: Relay, redis_client: redis.Redis) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    everything = relay.subscribe(Interest())
    only_bob = relay.subscribe(Interest(customers=frozenset({bob})))
    only_events = relay.subscribe(Interest(types=frozenset({"offline"})))
    producer = Producer(redis_client)
    sent = [producer.sample(alice), producer.sample(bob), producer.event(bob), producer.sample(alice)]
    got = await _collect(everything, 4)
    assert [f.id for f in got] == sent
    assert [json.loads(f.text)["id"] for f in got] == sent  # the seed's flat object, with the id
    assert [f.id for f in await _collect(only_bob, 2)] == sent[1:3]
    assert [f.type for f in await _collect(only_events, 1)] == ["offline"]
    for sub in (everything, only_bob, only_events):
        sub.close()
    assert relay.subscribers == 0


async def test_relay_latency_entries_only_to_who_asked(relay: Relay, redis_client: redis.Redis) -> None:
    alice = str(uuid.uuid4())
    producer = Producer(redis_client)
    before = producer.sample(alice)
    await _caught_up_to(relay, before)
    seed_client = relay.subscribe(Interest())
    samples = relay.subscribe(Interest(types=TRAFFIC_TYPES))
    pings = relay.subscribe(Interest(customers=frozenset({alice}), types=LATENCY_TYPES))
    both = relay.subscribe(Interest(types=TRAFFIC_TYPES | EVENT_TYPES | LATENCY_TYPES))
    lat = [producer.latency(alice), producer.latency(alice, rtt_ms=None)]
    last = [producer.sample(alice), producer.event(alice)]
    assert [f.id for f in await _collect(seed_client, 2)] == last
    assert [f.id for f in await _collect(samples, 1)] == last[:1]
    got = await _collect(pings, 2)
    assert [f.id for f in got] == lat and {f.type for f in got} == {"latency"}
    assert [json.loads(f.text)["rtt_ms"] for f in got] == [9.5, None]
    assert [f.id for f in await _collect(both, 4)] == [*lat, *last]
    # Catch-up filters the same way: from before the pings, a seed client resumes past them.
    resumed = relay.subscribe(Interest(customers=frozenset({alice})))
    caught: list[Frame] = []
    async for page in resumed.catch_up(before, retention_ms=3_600_000):
        assert isinstance(page, list)
        caught += page
    assert [f.id for f in caught] == last
    for sub in (seed_client, samples, pings, both, resumed):
        sub.close()


async def test_relay_entries_nobody_wants_are_skipped_yet_resumable(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    producer = Producer(redis_client)
    follows_alice = relay.subscribe(Interest(customers=frozenset({alice})))
    pings_a = relay.subscribe(Interest(types=LATENCY_TYPES))
    pings_b = relay.subscribe(Interest(types=LATENCY_TYPES))
    pings_a.close()
    pings_a.close()  # closing twice gives its interest back once: pings_b still gets pings
    first = [producer.sample(alice), producer.latency(alice), producer.sample(bob)]
    assert [f.id for f in await _collect(pings_b, 1)] == first[1:2]
    assert [f.id for f in await _collect(follows_alice, 1)] == first[:1]
    pings_b.close()
    read_before = relay.entries_read
    # Now nobody names latency and nobody follows bob: read past, never sent.
    unwanted = [producer.latency(alice), producer.sample(bob)]
    last = producer.sample(alice)
    assert [f.id for f in await _collect(follows_alice, 1)] == [last]
    assert relay.entries_read - read_before == 3  # skipped entries are still read (and counted)
    # A client that comes for them later resumes them from the stream.
    late = relay.subscribe(Interest(types=LATENCY_TYPES | TRAFFIC_TYPES))
    caught: list[str] = []
    async for page in late.catch_up(first[-1], retention_ms=3_600_000):
        assert isinstance(page, list)
        caught += [f.id for f in page]
    assert caught == [*unwanted, last]
    for sub in (follows_alice, late):
        sub.close()
    assert relay.subscribers == 0


async def test_relay_resume_delivers_everything_after_the_id_in_order_once(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice = str(uuid.uuid4())
    producer = Producer(redis_client)
    seen = [producer.sample(alice) for _ in range(3)]
    missed = [producer.sample(alice) for _ in range(5)]  # produced while the client was away
    await _caught_up_to(relay, missed[-1])
    sub = relay.subscribe(Interest(customers=frozenset({alice})))
    later = [producer.sample(alice) for _ in range(3)]  # produced during the catch-up
    caught: list[str] = []
    async for item in sub.catch_up(seen[-1], retention_ms=3_600_000):
        assert not isinstance(item, dict), item  # nothing was trimmed: no gap frame
        caught.extend(f.id for f in item)
    live = [f.id for f in await _collect(sub, len(later))]
    assert caught + live == missed + later  # no gap, no duplicate at the seam
    sub.close()


async def test_relay_resume_after_trimming_sends_one_gap_frame_first(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice = str(uuid.uuid4())
    producer = Producer(redis_client, maxlen=100)
    old = producer.sample(alice)
    newest = [producer.sample(alice) for _ in range(10)][-1]
    # The customer stream is trimmed by time; cut it by hand as its retention would.
    redis_client.xtrim(keys.customer_stream(alice), maxlen=3, approximate=False)
    kept = [i.decode() for i, _ in stream_entries(redis_client.xrange(keys.customer_stream(alice)))]
    await _caught_up_to(relay, newest)
    sub = relay.subscribe(Interest(customers=frozenset({alice})))
    items = [item async for item in sub.catch_up(old, retention_ms=3_600_000)]
    assert items[0] == {"type": "gap", "from": old, "to": kept[0]}
    assert [f.id for page in items[1:] for f in page] == kept  # type: ignore[union-attr]
    sub.close()


async def test_relay_slow_subscriber_overflows_without_touching_the_others(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice = str(uuid.uuid4())
    slow = relay.subscribe(Interest())
    fast = relay.subscribe(Interest())
    producer = Producer(redis_client)
    received: list[Frame] = []
    for _ in range(80):  # the outbox holds 50
        producer.sample(alice)
        if len(received) < 80:
            received.extend(await fast.next_batch(timeout=0.05))
    received.extend(await _collect(fast, 80 - len(received)))
    assert len(received) == 80
    with pytest.raises(Overflow):
        await slow.next_batch(timeout=1.0)
    slow.close()
    fast.close()


async def test_relay_reader_resumes_after_its_redis_restarts(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path).start()
    client = aioredis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=1)
    relay = Relay(client, block_ms=200)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(relay.started.wait(), 5)
        sub = relay.subscribe(Interest())
        sync = redis.Redis.from_url(server.url)
        producer = Producer(sync)
        alice = str(uuid.uuid4())
        first = producer.sample(alice)
        assert [f.id for f in await _collect(sub, 1)] == [first]
        server.stop()
        # The reader fails on the stopped server, and backs off, before it is back.
        await _until(lambda: relay.restarts >= 1, "the reader to fail on the stopped server", timeout=10.0)
        server.start()
        producer = Producer(redis.Redis.from_url(server.url))  # everything was lost
        after = [producer.sample(alice) for _ in range(3)]
        got = await _collect(sub, 3, timeout=15.0)
        assert [f.id for f in got] == after
        assert relay.restarts >= 1
        sub.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        server.stop()


async def test_relay_catch_up_of_many_customers_merges_page_by_page(
    relay: Relay, redis_client: redis.Redis
) -> None:
    """200 customers from 0-0: every retained entry once and in order, merged lazily:
    with the streams gone after the first page, what was not yet read is never sent
    (a catch-up that loaded everything up front would still send it all)."""
    customers = [str(uuid.uuid4()) for _ in range(200)]
    per_customer = 150
    producer = Producer(redis_client)
    template = producer.sample(str(uuid.uuid4()))
    ((_, fields),) = stream_entries(redis_client.xrange(keys.COMBINED_STREAM, template, template))
    # Written as the publisher writes them, faster: one id per entry in both streams, the
    # customers interleaved, 10 s in the past so the catch-up's end lies beyond them.
    base = id_ms(template) - 10_000
    pipe = redis_client.pipeline(transaction=False)
    for n in range(per_customer * len(customers)):
        customer = customers[n % len(customers)]
        entry = {**fields, b"customer_id": customer.encode()}
        pipe.xadd(keys.customer_stream(customer), entry, id=f"{base}-{n}")  # type: ignore[arg-type]
    pipe.execute()
    await _caught_up_to(relay, producer.sample(str(uuid.uuid4())))
    interest = Interest(customers=frozenset(customers))

    sub = relay.subscribe(interest)
    keys_seen = [f.key async for page in sub.catch_up("0-0", 3_600_000) for f in page]  # type: ignore[union-attr]
    sub.close()
    assert len(keys_seen) == len(set(keys_seen)) == 200 * per_customer
    assert keys_seen == sorted(keys_seen)

    sub = relay.subscribe(interest)
    sent = 0
    async for page in sub.catch_up("0-0", 3_600_000):
        assert not isinstance(page, dict)
        if sent == 0:
            redis_client.delete(*(keys.customer_stream(c) for c in customers))
        sent += len(page)
    sub.close()
    assert CATCH_UP_PAGE <= sent <= 200 * MERGE_PAGE_MIN < 200 * per_customer


async def test_relay_top_frames_whole_only_to_who_asked_by_router(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice = str(uuid.uuid4())
    everything = relay.subscribe(Interest())
    tops = relay.subscribe(Interest(types=TOP_TYPES))
    r1_top_and_sessions = relay.subscribe(
        Interest(types=TOP_TYPES | SESSION_EVENT_TYPES, routers=frozenset({"r1"}))
    )
    samples_and_tops = relay.subscribe(
        Interest(customers=frozenset({alice}), types=TRAFFIC_TYPES | TOP_TYPES)
    )
    producer, r1, r2 = (
        Producer(redis_client),
        RouterProducer(redis_client, "r1"),
        RouterProducer(redis_client, "r2"),
    )
    sent = [producer.sample(alice), r1.top(alice), r2.top(alice), r1.session(alice), producer.sample(alice)]
    assert [f.id for f in await _collect(everything, 2)] == [sent[0], sent[4]]  # as before the watches
    got = await _collect(tops, 2)
    assert [f.id for f in got] == [sent[1], sent[2]]
    frame = json.loads(got[0].text)
    assert frame["router"] == "r1" and frame["top"][0]["customer_id"] == alice  # whole, not the summary
    assert [f.id for f in await _collect(r1_top_and_sessions, 2)] == [sent[1], sent[3]]
    assert [f.id for f in await _collect(samples_and_tops, 4)] == [sent[0], sent[1], sent[2], sent[4]]
    for sub in (everything, tops, r1_top_and_sessions, samples_and_tops):
        sub.close()


async def test_relay_resume_of_top_frames_reads_the_router_stream_once_each(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice = str(uuid.uuid4())
    producer, r1 = Producer(redis_client), RouterProducer(redis_client, "r1")
    first = r1.top(alice)
    missed = [producer.sample(alice), r1.top(alice, 7), r1.session(alice), r1.top(alice, 9)]
    await _caught_up_to(relay, missed[-1])
    interest = Interest(types=TOP_TYPES | SESSION_EVENT_TYPES | TRAFFIC_TYPES)
    sub = relay.subscribe(interest)
    later = r1.top(alice, 11)
    caught: list[Frame] = []
    async for item in sub.catch_up(first, retention_ms=3_600_000):
        assert not isinstance(item, dict), item
        caught.extend(item)
    live = await _collect(sub, 1)
    assert [f.id for f in caught + live] == [*missed, later]  # in order, each once
    tops = [json.loads(f.text) for f in caught if f.type == "top"]
    assert [t["top"][0]["download_bps"] for t in tops] == [7, 9]  # whole frames
    only_r2 = relay.subscribe(Interest(types=TOP_TYPES, routers=frozenset({"r2"})))
    assert [item async for item in only_r2.catch_up(first, retention_ms=3_600_000)] == []
    sub.close()
    only_r2.close()


async def test_relay_alert_events_only_to_who_asked_whatever_their_customers(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    producer, alerts = Producer(redis_client), AlertProducer(redis_client)
    seed_client = relay.subscribe(Interest())
    samples = relay.subscribe(Interest(types=TRAFFIC_TYPES))
    # The dashboard's feed: a few customers' samples, and every alert.
    dashboard = relay.subscribe(Interest(customers=frozenset({alice}), types=TRAFFIC_TYPES | ALERT_TYPE_SET))
    only_alerts = relay.subscribe(Interest(types=ALERT_TYPE_SET))
    sent = [
        producer.sample(alice),
        alerts.event("alert_firing", "a1", customer_id=bob),
        alerts.event("alert_firing", "a2", router="r9"),  # a router's: no customer
        producer.sample(bob),
        alerts.event("alert_acknowledged", "a1", customer_id=bob),
    ]
    assert [f.id for f in await _collect(seed_client, 2)] == [sent[0], sent[3]]
    assert [f.id for f in await _collect(samples, 2)] == [sent[0], sent[3]]
    got = await _collect(only_alerts, 3)
    assert [f.id for f in got] == [sent[1], sent[2], sent[4]]
    router_alert = json.loads(got[1].text)
    assert router_alert["customer_id"] is None and router_alert["subject"] == "router:r9"
    assert router_alert["rule_id"] == 1 and router_alert["value"] == 97.3
    assert [json.loads(f.text)["type"] for f in got] == ["alert_firing", "alert_firing", "alert_acknowledged"]
    assert sorted(f.id for f in await _collect(dashboard, 4)) == sorted([sent[0], sent[1], sent[2], sent[4]])
    assert relay.alerts_last_id == sent[4]
    for sub in (seed_client, samples, dashboard, only_alerts):
        sub.close()


async def test_relay_resume_of_alerts_merges_the_alerts_stream_with_a_seam_each(
    relay: Relay, redis_client: redis.Redis
) -> None:
    alice = str(uuid.uuid4())
    producer, alerts = Producer(redis_client), AlertProducer(redis_client)
    seen = producer.sample(alice)
    ms, seq = parse_id(seen)
    missed = [
        # Appended after `seen` in its millisecond: its id is `seen`'s, in its own stream.
        alerts.event("alert_firing", "b1", customer_id=alice, entry_id=f"{ms}-{seq}"),
        producer.sample(alice),
        alerts.event("alert_resolved", "b1", customer_id=alice),
        producer.sample(alice),
    ]
    await _caught_up_to(relay, missed[-1])
    await _until(lambda: relay.alerts_last_id == missed[2], "the reader to read the alerts")
    sub = relay.subscribe(Interest(customers=frozenset({alice}), types=TRAFFIC_TYPES | ALERT_TYPE_SET))
    await _until(lambda: redis_ms(redis_client) > id_ms(missed[2]), "the Redis clock's next millisecond")
    later = producer.sample(alice)
    caught: list[str] = []
    async for item in sub.catch_up(seen, retention_ms=3_600_000):
        assert not isinstance(item, dict), item  # the alerts stream was not trimmed: no gap
        caught.extend(f.id for f in item)
    assert caught == missed  # both streams, in id order, each entry once
    assert [f.id for f in await _collect(sub, 1)] == [later]
    # An alert appended after `later` in its millisecond gets `later`'s id (or a smaller
    # one) in its own stream: the alerts stream's seam is its own, so it still goes out.
    assert id_ms(missed[2]) < id_ms(later), "the alerts stream is behind `later`: its id is free"
    same_ms = alerts.event("alert_acknowledged", "b1", customer_id=alice, entry_id=later)
    got = await _collect(sub, 1)
    assert [f.id for f in got] == [same_ms] and got[0].type == "alert_acknowledged"
    sub.close()
    # Alerts only: the catch-up reads the alerts stream, not the customers'.
    only_alerts = relay.subscribe(Interest(types=ALERT_TYPE_SET))
    pages = [item async for item in only_alerts.catch_up(seen, retention_ms=3_600_000)]
    assert [f.id for page in pages for f in page] == [missed[0], missed[2], same_ms]  # type: ignore[union-attr]
    only_alerts.close()
