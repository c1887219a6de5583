"""Fenced publishing against a real Redis: both streams, fencing, retention."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis

from harness.polling import wait_for
from settings import load_settings
from tasks import keys
from tasks.message import (
    CustomerMeta,
    MessageError,
    decode_entry,
    latency_entry,
    status_entry,
    traffic_from_row,
)
from tasks.publisher import Publisher
from tasks.semaphore import MEMORY_RESERVE, Semaphore
from tests.tasks.streams import decoded, id_ms, redis_ms, stream_entries

TTL = 30.0
META = CustomerMeta(
    customer_id="alice",
    customer_name="Alice",
    username="alice",
    service_type="pppoe",
    interface="<pppoe-alice>",
    router="core-1",
)
ROW = {"name": "<pppoe-alice>", "rx-bits-per-second": "1000", "tx-bits-per-second": "9000"}


def sample(seq: int, fence: int) -> dict[str, str]:
    return traffic_from_row(ROW, META, session_id="s1", seq=seq, fence=fence)


def acquire(sem: Semaphore, token: str = "s1:1") -> int:
    return sem.acquire(token, "alice", "r1", global_limit=10, router_limit=None, ttl=TTL)


def test_publisher_fenced_publish_writes_both_streams(redis_client: redis.Redis) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    fence = acquire(sem)
    ids = pub.publish(sample(1, fence), token="s1:1", fence=fence)
    assert ids is not None
    ((cid, cfields),) = stream_entries(redis_client.xrange(keys.customer_stream("alice")))
    ((gid, gfields),) = stream_entries(redis_client.xrange(keys.COMBINED_STREAM))
    assert (cid.decode(), gid.decode()) == (ids.customer, ids.combined)
    assert ids.customer == ids.combined  # one cursor for both streams
    assert cfields == gfields
    msg = decode_entry(cid, cfields)
    assert msg["id"] == ids.customer and msg["download_bps"] == 9000 and msg["fence"] == fence


def latency(fence: int, rtt_ms: float) -> dict[str, str]:
    return latency_entry(
        META,
        address="10.0.0.9",
        ping_seq=1,
        rtt_ms=rtt_ms,
        status=None,
        loss_pct=0.0,
        session_id="s1",
        fence=fence,
    )


def test_publisher_publish_many_appends_in_order_in_both_streams_or_nothing(
    redis_client: redis.Redis,
) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    fence = acquire(sem)
    entries = [latency(fence, 9.5), latency(fence, 11.0), sample(1, fence)]
    ids = pub.publish_many(entries, token="s1:1", fence=fence)
    assert ids is not None and len(ids) == 3
    customer = stream_entries(redis_client.xrange(keys.customer_stream("alice")))
    combined = stream_entries(redis_client.xrange(keys.COMBINED_STREAM))
    assert [i.decode() for i, _ in customer] == [i.decode() for i, _ in combined] == [i.combined for i in ids]
    got = [decode_entry(i, f) for i, f in customer]
    assert [(m["type"], m.get("rtt_ms")) for m in got] == [
        ("latency", 9.5),
        ("latency", 11.0),
        ("traffic", None),
    ]
    # Every entry's timestamp is the publish's (Redis) time, as for a single publish.
    assert {m["timestamp"] for m in got} == {got[0]["timestamp"]}
    written = datetime.strptime(got[0]["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(written.timestamp() * 1000 - id_ms(ids[0].combined)) <= 5
    # Fenced out: none of them lands.
    redis_client.delete(keys.customer_owner("alice"))
    assert pub.publish_many([latency(fence, 1.0), sample(2, fence)], token="s1:1", fence=fence) is None
    assert redis_client.xlen(keys.customer_stream("alice")) == redis_client.xlen(keys.COMBINED_STREAM) == 3


def test_publisher_publish_many_refuses_entries_of_two_customers(redis_client: redis.Redis) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    fence = acquire(sem)
    bob = traffic_from_row(ROW, replace(META, customer_id="bob"), session_id="s2", seq=1, fence=fence)
    with pytest.raises(MessageError, match="customer_id"):
        pub.publish_many([sample(1, fence), bob], token="s1:1", fence=fence)
    assert redis_client.exists(keys.COMBINED_STREAM) == 0


def test_publisher_refuses_when_the_owner_key_is_deleted(redis_client: redis.Redis) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    fence = acquire(sem)
    assert pub.publish(sample(1, fence), token="s1:1", fence=fence)
    redis_client.delete(keys.customer_owner("alice"))
    assert pub.publish(sample(2, fence), token="s1:1", fence=fence) is None
    assert redis_client.xlen(keys.customer_stream("alice")) == 1
    assert redis_client.xlen(keys.COMBINED_STREAM) == 1


def test_publisher_refuses_a_stale_fence_or_token_after_takeover(redis_client: redis.Redis) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    old = acquire(sem)
    assert pub.publish(sample(1, old), token="s1:1", fence=old + 1) is None
    new = sem.takeover(
        "s1:2", "alice", "r1", previous_token="s1:1", global_limit=10, router_limit=None, ttl=TTL
    )
    assert pub.publish(sample(2, old), token="s1:1", fence=old) is None
    assert pub.publish(sample(2, new), token="s1:2", fence=new) is not None
    fences = {m["fence"] for m in decoded(redis_client.xrange(keys.customer_stream("alice")))}
    assert fences == {new}


def test_publisher_status_after_release_is_unfenced_but_never_traffic(
    redis_client: redis.Redis,
) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    fence = acquire(sem)
    started = status_entry("started", META, session_id="s1", seq=0, fence=fence)
    assert pub.publish(started, token="s1:1", fence=fence)
    sem.release("s1:1", "alice", "r1")
    assert pub.publish(sample(1, fence), token="s1:1", fence=fence) is None
    stopped = status_entry("stopped", META, session_id="s1", seq=1, fence=fence, reason="api stop")
    ids = pub.publish_status(stopped)
    last = decoded(redis_client.xrange(keys.customer_stream("alice"), min=ids.customer))
    assert last[0]["reason"] == "api stop"
    with pytest.raises(MessageError, match="fenced"):
        pub.publish_status(sample(2, fence))
    assert [m["type"] for m in decoded(redis_client.xrange(keys.COMBINED_STREAM))] == [
        "started",
        "stopped",
    ]


def test_publisher_refuses_entries_that_are_not_messages(redis_client: redis.Redis) -> None:
    pub = Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    with pytest.raises(MessageError, match="customer_id"):
        pub.publish_status({"type": "stopped"})
    with pytest.raises(MessageError, match="seq"):
        pub.publish_status({"type": "stopped", "customer_id": "alice", "seq": 3})  # type: ignore[dict-item]  # an int, on purpose


def test_publisher_combined_stream_is_bounded_by_approximate_maxlen(
    redis_client: redis.Redis,
) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=100, retention_seconds=3600)
    fence = acquire(sem)
    for seq in range(350):
        assert pub.publish(sample(seq, fence), token="s1:1", fence=fence)
    # `~` trims whole macro nodes (100 entries by default): at least maxlen, well below 350
    assert 100 <= redis_client.xlen(keys.COMBINED_STREAM) < 350
    assert redis_client.xlen(keys.customer_stream("alice")) == 350


def test_publisher_customer_stream_keeps_a_time_window_and_expires(
    redis_client: redis.Redis,
) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=100_000, retention_seconds=1)
    fence = acquire(sem)
    for seq in range(250):
        ids = pub.publish(sample(seq, fence), token="s1:1", fence=fence)
    assert 0 < redis_client.pttl(keys.customer_stream("alice")) <= 1000
    assert ids is not None
    batch_end_ms = id_ms(ids.customer)

    def window_passed() -> bool:
        return redis_ms(redis_client) > batch_end_ms + 1000

    wait_for(window_passed, what="the retention window to pass on the Redis clock")
    last = pub.publish(sample(250, fence), token="s1:1", fence=fence)
    assert last is not None
    # every earlier entry is now outside the window; MINID ~ drops at least the full nodes
    remaining = stream_entries(redis_client.xrange(keys.customer_stream("alice")))
    assert len(remaining) <= 251 - 200 and remaining[-1][0].decode() == last.customer
    assert redis_client.xlen(keys.COMBINED_STREAM) == 251


def test_publisher_ids_match_across_streams_with_many_customers(redis_client: redis.Redis) -> None:
    sem, pub = (
        Semaphore(redis_client),
        Publisher(redis_client, combined_maxlen=10_000, retention_seconds=3600),
    )
    metas = [
        CustomerMeta(
            customer_id=f"c{i}",
            customer_name="n",
            username="u",
            service_type="pppoe",
            interface="<pppoe-u>",
            router="core-1",
        )
        for i in range(5)
    ]
    fences = [
        sem.acquire(f"s{i}:1", m.customer_id, "r1", global_limit=10, router_limit=None, ttl=TTL)
        for i, m in enumerate(metas)
    ]
    for seq in range(40):
        i = seq % 5
        # each session's own seq, without holes (a hole would add a gap entry)
        entry = traffic_from_row(ROW, metas[i], session_id=f"s{i}", seq=seq // 5, fence=fences[i])
        ids = pub.publish(entry, token=f"s{i}:1", fence=fences[i])
        assert ids is not None and ids.customer == ids.combined
    combined = {i.decode() for i, _ in stream_entries(redis_client.xrange(keys.COMBINED_STREAM))}
    per_customer = set()
    for m in metas:
        stream = stream_entries(redis_client.xrange(keys.customer_stream(m.customer_id)))
        per_customer |= {i.decode() for i, _ in stream}
    assert combined == per_customer and len(combined) == 40


def test_publisher_survives_a_deleted_combined_stream(redis_client: redis.Redis) -> None:
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    fence = acquire(sem)
    pub.publish(sample(1, fence), token="s1:1", fence=fence)
    # a customer stream ahead of the combined one (as after a deleted combined stream and a
    # clock step back): the customer stream falls back to an id of its own
    redis_client.xadd(keys.customer_stream("alice"), {"type": "started"}, id="99999999999999-0")
    redis_client.delete(keys.COMBINED_STREAM)
    ids = pub.publish(sample(2, fence), token="s1:1", fence=fence)
    assert ids is not None and ids.customer != ids.combined
    assert ids.customer > "99999999999999-0"


def test_publisher_no_interleaving_when_a_lease_is_taken_over_mid_stream(
    redis_client: redis.Redis,
) -> None:
    import threading

    sem, pub = (
        Semaphore(redis_client),
        Publisher(redis_client, combined_maxlen=100_000, retention_seconds=3600),
    )
    old = acquire(sem)
    refused = threading.Event()

    def stale_producer() -> None:  # keeps publishing until the fence refuses it
        seq = 0
        while pub.publish(sample(seq, old), token="s1:1", fence=old) is not None:
            seq += 1
        refused.set()

    producer = threading.Thread(target=stale_producer)
    producer.start()
    wait_for(
        lambda: redis_client.xlen(keys.customer_stream("alice")) >= 20,
        what="the first producer to be streaming",
    )
    new = sem.takeover(
        "s1:2", "alice", "r1", previous_token="s1:1", global_limit=10, router_limit=None, ttl=TTL
    )
    for seq in range(20):
        assert pub.publish(sample(seq, new), token="s1:2", fence=new)
    assert refused.wait(5.0)
    producer.join()
    fences = [m["fence"] for m in decoded(redis_client.xrange(keys.customer_stream("alice")))]
    switch = fences.index(new)
    assert set(fences[:switch]) == {old} and set(fences[switch:]) == {new}


def test_publisher_timestamp_is_the_redis_clock_whatever_the_producer_wrote(
    redis_client: redis.Redis,
) -> None:
    """A worker whose clock is off writes the time of Redis, the clock of the entry ids."""
    sem, pub = Semaphore(redis_client), Publisher(redis_client, combined_maxlen=1000, retention_seconds=3600)
    fence = acquire(sem)
    skewed = datetime(2001, 2, 28, 23, 59, 59, 999000, tzinfo=UTC)
    traffic = traffic_from_row(ROW, META, session_id="s1", seq=1, fence=fence, timestamp=skewed)
    status = status_entry("stopped", META, session_id="s1", seq=2, fence=None, reason="x", timestamp=skewed)
    assert pub.publish(traffic, token="s1:1", fence=fence)
    pub.publish_status(status)
    for entry in decoded(redis_client.xrange(keys.customer_stream("alice"))):
        written = datetime.strptime(entry["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        # The script reads TIME just before its XADD picks the id: the same clock.
        assert abs(written.timestamp() * 1000 - id_ms(entry["id"])) <= 5, (entry["timestamp"], entry["id"])


# What the README promises: 1,000 monitors with the default retention fit in this much
# Redis memory, leaving the semaphore's reserve free (new monitors are refused inside it).
MEMORY_BUDGET = 2**30
MONITORS = 1000


def _realistic_meta(i: int) -> CustomerMeta:
    # Field lengths as the seed's customers have them (uuid ids, "First Last" names).
    return CustomerMeta(
        customer_id=str(uuid.UUID(int=i + 1)),
        customer_name=f"Customer Number{i:05d}",
        username=f"customer.number{i:05d}",
        service_type="pppoe",
        interface=f"<pppoe-customer.number{i:05d}>",
        router="mikrotik-001",
        package="home-50M",
        package_download_bps=50_000_000,
        package_upload_bps=20_000_000,
    )


def _router_row(rng: random.Random) -> dict[str, str]:
    down, up = rng.randrange(50_000_000), rng.randrange(20_000_000)
    return {
        "name": "x",
        "rx-bits-per-second": str(up),
        "tx-bits-per-second": str(down),
        "rx-packets-per-second": str(up // 1200),
        "tx-packets-per-second": str(down // 1200),
    }


def _memory_usage(client: redis.Redis, key: str) -> int:
    """Bytes of one key, every node counted (SAMPLES 0)."""
    used = client.memory_usage(key, samples=0)
    assert used is not None, f"{key} does not exist"
    return used


def test_publisher_default_retention_of_a_thousand_monitors_fits_the_memory_budget(
    redis_client: redis.Redis,
) -> None:
    """MEMORY USAGE of streams written by the real publish script with real entries."""
    defaults = load_settings(environ={}, env_file="/nonexistent/.env")
    per_stream = int(defaults.customer_stream_retention / defaults.monitor_interval)
    pub = Publisher(redis_client, combined_maxlen=10**9, retention_seconds=10**6)
    rng = random.Random(1)
    session = str(uuid.uuid4())

    # One customer's stream at full retention.
    meta = _realistic_meta(0)
    for seq in range(per_stream):
        entry = traffic_from_row(_router_row(rng), meta, session_id=session, seq=seq, fence=1795517328938001)
        pub._run(entry, "", "")
    customer_bytes = _memory_usage(redis_client, keys.customer_stream(meta.customer_id))
    assert redis_client.xlen(keys.customer_stream(meta.customer_id)) == per_stream

    # The combined stream interleaves every customer.
    redis_client.flushdb()
    metas = [_realistic_meta(i) for i in range(100)]
    rounds = 20
    for seq in range(rounds):
        for m in metas:
            entry = traffic_from_row(_router_row(rng), m, session_id=session, seq=seq, fence=1795517328938001)
            pub._run(entry, "", "")
    combined_per_entry = _memory_usage(redis_client, keys.COMBINED_STREAM) / (rounds * len(metas))

    total = MONITORS * customer_bytes + defaults.stream_maxlen * combined_per_entry
    print(
        f"\nper entry: customer stream {customer_bytes / per_stream:.0f} B,"
        f" combined {combined_per_entry:.0f} B; {MONITORS} monitors x"
        f" {defaults.customer_stream_retention} s: {total / 2**20:.0f} MiB"
    )
    assert total <= MEMORY_BUDGET * (1 - MEMORY_RESERVE), f"{total / 2**20:.0f} MiB"
