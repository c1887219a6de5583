"""The batching publisher against a real Redis: many callers, one pipeline, fencing per entry."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import redis

from harness.polling import wait_for
from harness.redis_server import PrivateRedis
from settings import load_settings
from tasks import keys
from tasks.message import CustomerMeta, decode_entry, traffic_from_row
from tasks.publisher import BatchPublisher, PendingPublish, Publisher, batch_client
from tasks.semaphore import Semaphore
from tests.tasks.batching import GatedBatchPublisher, in_threads
from tests.tasks.streams import decoded, stream_entries

TTL = 60.0
ROW = {"name": "<pppoe-u>", "rx-bits-per-second": "1000", "tx-bits-per-second": "9000"}


def meta(customer_id: str) -> CustomerMeta:
    return CustomerMeta(
        customer_id=customer_id,
        customer_name="n",
        username="u",
        service_type="pppoe",
        interface="<pppoe-u>",
        router="core-1",
    )


def sample(customer_id: str, seq: int, fence: int, session: str = "s") -> dict[str, str]:
    return traffic_from_row(ROW, meta(customer_id), session_id=session, seq=seq, fence=fence)


def acquire(sem: Semaphore, token: str, customer_id: str) -> int:
    return sem.acquire(token, customer_id, "r1", global_limit=10_000, router_limit=None, ttl=TTL)


@pytest.fixture
def plain(redis_client: redis.Redis) -> Publisher:
    return Publisher(redis_client, combined_maxlen=1_000_000, retention_seconds=3600)


@pytest.fixture
def batch(plain: Publisher) -> Iterator[BatchPublisher]:
    pub = BatchPublisher(plain)
    yield pub
    pub.close()


def test_batch_publisher_many_threads_each_entry_lands_once_with_its_own_ids(
    redis_client: redis.Redis, batch: BatchPublisher
) -> None:
    sem = Semaphore(redis_client)
    threads, per_thread = 200, 10
    fences = {i: acquire(sem, f"s{i}:1", f"c{i}") for i in range(threads)}
    got: dict[int, list] = {}
    start = threading.Barrier(threads)

    def producer(i: int) -> None:
        start.wait()
        got[i] = [
            batch.publish(sample(f"c{i}", seq, fences[i], session=f"s{i}"), token=f"s{i}:1", fence=fences[i])
            for seq in range(per_thread)
        ]

    in_threads([lambda i=i: producer(i) for i in range(threads)])
    combined = stream_entries(redis_client.xrange(keys.COMBINED_STREAM))
    assert len(combined) == threads * per_thread
    assert len({i for i, _ in combined}) == threads * per_thread
    for i in range(threads):
        ids = got[i]
        assert all(x is not None and x.customer == x.combined for x in ids)
        stream = stream_entries(redis_client.xrange(keys.customer_stream(f"c{i}")))
        # Every entry of this caller exactly once, in its order, under the ids it was given.
        assert [sid.decode() for sid, _ in stream] == [x.customer for x in ids]
        assert [decode_entry(sid, f)["seq"] for sid, f in stream] == list(range(per_thread))
        assert {decode_entry(sid, f)["session_id"] for sid, f in stream} == {f"s{i}"}
    # The point of it: far fewer round trips than entries.
    assert batch.entries == threads * per_thread
    assert batch.batches < batch.entries and batch.largest_batch > 1


def test_batch_publisher_refuses_a_stale_token_inside_a_batch_the_others_land(
    redis_client: redis.Redis, plain: Publisher
) -> None:
    sem = Semaphore(redis_client)
    fences = {i: acquire(sem, f"s{i}:1", f"c{i}") for i in range(5)}
    # c0 is taken over: its old producer ("s0:1") is fenced out from now on.
    new = sem.takeover(
        "s0:2", "c0", "r1", previous_token="s0:1", global_limit=10_000, router_limit=None, ttl=TTL
    )
    pub = GatedBatchPublisher(plain)
    try:
        first = threading.Thread(
            target=lambda: pub.publish(sample("c1", 0, fences[1]), token="s1:1", fence=fences[1])
        )
        first.start()
        assert pub.held.wait(5)
        calls: list[Callable[[], object]] = [
            lambda: pub.publish(sample("c0", 1, fences[0]), token="s0:1", fence=fences[0]),
            lambda: pub.publish(sample("c0", 1, fences[0]), token="s0:2", fence=fences[0]),
            lambda: pub.publish(sample("c0", 2, new), token="s0:2", fence=new),
        ]
        calls += [
            partial(pub.publish, sample(f"c{i}", 1, fences[i]), token=f"s{i}:1", fence=fences[i])
            for i in range(2, 5)
        ]
        runner, results = pub.queue_behind_held(calls)
        pub.gate.set()
        runner.join(10)
        first.join(10)
    finally:
        pub.close()
    assert pub.sizes == [1, len(calls)]  # all of them in one pipeline
    stale_token, stale_fence, owner, *others = results
    assert stale_token is None and stale_fence is None
    assert owner is not None and all(r is not None and not isinstance(r, Exception) for r in others)
    assert [m["fence"] for m in decoded(redis_client.xrange(keys.customer_stream("c0")))] == [new]
    for i in range(2, 5):
        assert redis_client.xlen(keys.customer_stream(f"c{i}")) == 1


def test_batch_publisher_a_script_error_fails_only_its_own_entry(
    redis_client: redis.Redis, batch: BatchPublisher
) -> None:
    sem = Semaphore(redis_client)
    fences = {i: acquire(sem, f"s{i}:1", f"c{i}") for i in range(3)}
    redis_client.set(keys.customer_stream("c1"), "not a stream")  # WRONGTYPE inside the script
    results = in_threads(
        [
            lambda i=i: batch.publish(sample(f"c{i}", 0, fences[i]), token=f"s{i}:1", fence=fences[i])
            for i in range(3)
        ]
    )
    assert isinstance(results[1], redis.ResponseError)
    assert results[0] is not None and results[2] is not None
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert batch.running


def test_batch_publisher_withdraws_an_entry_whose_caller_gave_up(
    redis_client: redis.Redis, plain: Publisher
) -> None:
    sem = Semaphore(redis_client)
    f0, f1 = acquire(sem, "s0:1", "c0"), acquire(sem, "s1:1", "c1")
    pub = GatedBatchPublisher(plain, wait_timeout=0.3)
    try:
        with pytest.raises(redis.TimeoutError, match="may still be applied"):
            pub.publish(sample("c0", 0, f0), token="s0:1", fence=f0)  # sent, held at the gate
        with pytest.raises(redis.TimeoutError, match="never sent"):
            pub.publish(sample("c1", 0, f1), token="s1:1", fence=f1)  # queued behind it
        pub.gate.set()
        wait_for(lambda: pub.sizes == [1], what="the held batch to go out")
        wait_for(lambda: redis_client.xlen(keys.customer_stream("c0")) == 1, what="the held entry")
        # The withdrawn one is skipped; the thread goes on serving.
        assert pub.publish(sample("c1", 1, f1), token="s1:1", fence=f1) is not None
    finally:
        pub.close()
    assert [m["seq"] for m in decoded(redis_client.xrange(keys.customer_stream("c1")))] == [1]


def test_batch_publisher_idle_thread_answers_a_single_publish_at_once(
    redis_client: redis.Redis, batch: BatchPublisher
) -> None:
    fence = acquire(Semaphore(redis_client), "s0:1", "c0")
    batch.publish(sample("c0", 0, fence), token="s0:1", fence=fence)  # warm up
    time.sleep(0.3)  # idle: the thread is blocked on its queue, not polling
    started = time.monotonic()
    assert batch.publish(sample("c0", 1, fence), token="s0:1", fence=fence) is not None
    assert time.monotonic() - started < 0.1


def test_batch_publisher_close_stops_the_thread_and_refuses_later_publishes(
    redis_client: redis.Redis, plain: Publisher
) -> None:
    fence = acquire(Semaphore(redis_client), "s0:1", "c0")
    pub = BatchPublisher(plain)
    pub.start()
    assert pub.running
    assert pub.publish(sample("c0", 0, fence), token="s0:1", fence=fence) is not None
    pub.close(timeout=2)
    assert not pub.running
    assert not [t for t in threading.enumerate() if t.name == "batch-publisher" and t is pub._thread]
    with pytest.raises(redis.ConnectionError, match="closed"):
        pub.publish(sample("c0", 1, fence), token="s0:1", fence=fence)
    pub.close()  # idempotent


def test_batch_publisher_validates_in_the_callers_thread(batch: BatchPublisher) -> None:
    from tasks.message import MessageError

    with pytest.raises(ValueError, match="token"):
        batch.publish(sample("c0", 0, 1), token="", fence=1)
    with pytest.raises(MessageError, match="customer_id"):
        batch.publish({"type": "traffic"}, token="t", fence=1)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def test_batch_publisher_redis_error_reaches_every_caller_then_it_keeps_working(
    private_redis: PrivateRedis,
) -> None:
    client = redis.Redis.from_url(private_redis.url)
    sem = Semaphore(client)
    plain = Publisher(client, combined_maxlen=10_000, retention_seconds=3600)
    private_settings = load_settings({"REDIS_URL": private_redis.url}, env_file="/nonexistent/.env")
    pub = GatedBatchPublisher(plain, batch_client(private_settings), owns_client=True)
    try:
        fences = {i: acquire(sem, f"s{i}:1", f"c{i}") for i in range(6)}
        # Warm: the thread's connection is open and the script is loaded.
        pub.gate.set()
        assert pub.publish(sample("c0", 0, fences[0]), token="s0:1", fence=fences[0])
        pub.held.clear()
        pub.gate.clear()
        first = threading.Thread(
            target=lambda: in_threads(
                [lambda: pub.publish(sample("c0", 1, fences[0]), token="s0:1", fence=fences[0])]
            )
        )
        first.start()
        assert pub.held.wait(5)
        calls = [
            lambda i=i: pub.publish(sample(f"c{i}", 1, fences[i]), token=f"s{i}:1", fence=fences[i])
            for i in range(1, 6)
        ]
        runner, results = pub.queue_behind_held(calls)
        private_redis.kill9()  # the thread's connection dies under both batches
        pub.gate.set()
        runner.join(15)
        first.join(15)
        assert len(results) == len(calls)
        assert all(isinstance(r, redis.ConnectionError) for r in results), results
        assert pub.running
        # Back, empty (no owner keys, no script): fencing refuses, then a fresh lease works.
        private_redis.start()
        wait_for(
            lambda: _answers(pub, fences[1]) is None,
            10.0,
            what="the thread to reconnect (fenced out: the owner key is gone)",
        )
        fence = acquire(sem, "s9:1", "c1")
        ids = pub.publish(sample("c1", 2, fence, session="s9"), token="s9:1", fence=fence)
        assert ids is not None
        c1 = stream_entries(client.xrange(keys.customer_stream("c1")))
        assert [i.decode() for i, _ in c1] == [ids.customer]
    finally:
        pub.gate.set()
        pub.close()
        client.close()
    assert not pub.running


def _answers(pub: BatchPublisher, fence: int) -> object:
    try:
        return pub.publish(sample("c1", 2, fence), token="s1:1", fence=fence)
    except redis.RedisError:
        return "error"


def test_batch_publisher_publish_many_is_one_item_fenced_as_one(
    redis_client: redis.Redis, plain: Publisher
) -> None:
    sem = Semaphore(redis_client)
    fences = {i: acquire(sem, f"s{i}:1", f"c{i}") for i in range(3)}
    redis_client.delete(keys.customer_owner("c1"))  # c1's producer is fenced out
    pub = GatedBatchPublisher(plain)
    try:
        first = threading.Thread(
            target=lambda: pub.publish(sample("c2", 0, fences[2]), token="s2:1", fence=fences[2])
        )
        first.start()
        assert pub.held.wait(5)
        calls: list[Callable[[], object]] = [
            partial(
                pub.publish_many,
                [sample(f"c{i}", seq, fences[i], session=f"s{i}") for seq in range(3)],
                token=f"s{i}:1",
                fence=fences[i],
            )
            for i in range(2)
        ]
        runner, results = pub.queue_behind_held(calls)
        pub.gate.set()
        runner.join(10)
        first.join(10)
    finally:
        pub.close()
    assert pub.sizes == [1, 2]  # one item per call, however many entries
    landed, fenced_out = results
    stream = stream_entries(redis_client.xrange(keys.customer_stream("c0")))
    assert isinstance(landed, list) and [x.customer for x in landed] == [sid.decode() for sid, _ in stream]
    assert [decode_entry(sid, f)["seq"] for sid, f in stream] == [0, 1, 2]
    assert fenced_out is None and redis_client.xlen(keys.customer_stream("c1")) == 0


def test_batch_publisher_submit_many_returns_at_once_and_reports_on_the_thread(
    redis_client: redis.Redis, plain: Publisher
) -> None:
    sem = Semaphore(redis_client)
    fences = {i: acquire(sem, f"s{i}:1", f"c{i}") for i in range(2)}
    redis_client.delete(keys.customer_owner("c1"))  # c1's producer is fenced out
    pub = GatedBatchPublisher(plain)
    seen: list[tuple[str, bool, str]] = []

    def on_done(pending: PendingPublish) -> None:
        seen.append((threading.current_thread().name, pending.fenced_out, str(pending.settled_at)))

    try:
        landing = pub.submit_many(
            [sample("c0", 0, fences[0])], token="s0:1", fence=fences[0], on_done=on_done
        )
        assert pub.held.wait(5)
        refused = pub.submit_many(
            [sample("c1", 0, fences[1])], token="s1:1", fence=fences[1], on_done=on_done
        )
        # Neither caller waited: both are out, the first one held in its batch.
        assert not landing.done() and not refused.done()
        pub.gate.set()
        wait_for(lambda: len(seen) == 2, what="both outcomes")
        assert [(name, fenced) for name, fenced, _ in seen] == [
            ("batch-publisher", False),
            ("batch-publisher", True),
        ]
        assert all(stamp != "None" for _, _, stamp in seen)  # settled_at is stamped before on_done
        ids = landing.result()
        assert ids is not None
        assert [i.decode() for i, _ in stream_entries(redis_client.xrange(keys.customer_stream("c0")))] == [
            ids[0].customer
        ]
        assert refused.result() is None and refused.fenced_out
    finally:
        pub.gate.set()
        pub.close()


def test_batch_publisher_withdraws_a_submitted_entry_past_its_deadline_unsent(
    redis_client: redis.Redis, plain: Publisher
) -> None:
    sem = Semaphore(redis_client)
    f0, f1 = acquire(sem, "s0:1", "c0"), acquire(sem, "s1:1", "c1")
    pub = GatedBatchPublisher(plain, wait_timeout=0.3)
    outcomes: list[PendingPublish] = []
    try:
        held = pub.submit_many([sample("c0", 0, f0)], token="s0:1", fence=f0)
        assert pub.held.wait(5)
        late = pub.submit_many([sample("c1", 0, f1)], token="s1:1", fence=f1, on_done=outcomes.append)
        # Nobody waits for it: the thread itself withdraws it once its deadline passed.
        wait_for(lambda: time.monotonic() > late.deadline, what="the deadline to pass")
        pub.gate.set()
        wait_for(late.done, what="the late entry's outcome")
        assert outcomes == [late] and not late.fenced_out
        with pytest.raises(redis.TimeoutError, match="never sent"):
            late.result()
        # The held one was sent before its deadline and landed, however late it answered.
        assert held.result() is not None
    finally:
        pub.gate.set()
        pub.close()
    assert redis_client.xlen(keys.customer_stream("c1")) == 0


def test_batch_publisher_submitted_publish_is_freed_without_the_cycle_collector(
    redis_client: redis.Redis, batch: BatchPublisher
) -> None:
    # One publish a second per monitor: a reference cycle each would be left to the cyclic
    # collector, whose full passes over a 1,000-thread worker stall every thread.
    fence = acquire(Semaphore(redis_client), "s0:1", "c0")
    seen: list[bool] = []
    gc.disable()
    try:
        pending = batch.submit_many(
            [sample("c0", 0, fence)], token="s0:1", fence=fence, on_done=lambda p: seen.append(p.landed)
        )
        assert pending.result() is not None
        wait_for(lambda: seen == [True], what="on_done")
        future = weakref.ref(pending._future)
        del pending
        assert future() is None, "the publish outlived its last reference (a reference cycle)"
    finally:
        gc.enable()
