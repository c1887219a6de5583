"""A monitor's publishes without waiting (tasks/monitor_publish.py), against a real Redis
and a real batch publisher held at its gate where the test needs a publish in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis

from harness.polling import wait_for
from tasks import keys, metrics
from tasks.leases import LeaseHandle
from tasks.lifecycle import LEASE_LOST
from tasks.message import CustomerMeta, status_entry, traffic_from_row
from tasks.monitor_publish import MonitorPublisher
from tasks.publisher import BatchPublisher, Publisher
from tasks.report import SessionReport
from tasks.semaphore import Semaphore
from tests.tasks.batching import GatedBatchPublisher
from tests.tasks.streams import decoded

META = CustomerMeta(
    customer_id="c0",
    customer_name="n",
    username="u",
    service_type="pppoe",
    interface="<pppoe-u>",
    router="core-1",
)
TOKEN = "s0:1"


ROW = {"name": "<pppoe-u>", "rx-bits-per-second": "1000", "tx-bits-per-second": "9000"}


def sample(seq: int, fence: int, download_bps: int = 9000) -> dict[str, str]:
    row = {**ROW, "tx-bits-per-second": str(download_bps)}
    return traffic_from_row(row, META, session_id="s0", seq=seq, fence=fence)


def status(kind: str, seq: int, fence: int) -> dict[str, str]:
    return status_entry(kind, META, session_id="s0", seq=seq, fence=fence, reason="test")


class Monitor:
    """What the run hands a MonitorPublisher: its lease, its report, and a record of the
    callbacks (each with the thread it ran on)."""

    def __init__(self, batch: BatchPublisher, fence: int) -> None:
        self.lease = LeaseHandle(
            token=TOKEN,
            customer_id="c0",
            router_id="r1",
            session_id="s0",
            claimant="test",
            task_id=None,
            stop_key=keys.session_stop("s0"),
            stop_event=threading.Event(),
        )
        self.report = SessionReport("s0", 1.0)
        self.out_of_memory: list[str] = []
        self.landed: list[str] = []
        self.fenced_out: list[list[object]] = []
        self.publishes = MonitorPublisher(
            lambda: batch,
            token=TOKEN,
            fence=fence,
            lease=self.lease,
            report=self.report,
            on_out_of_memory=lambda: self.out_of_memory.append(threading.current_thread().name),
            on_sample_landed=lambda: self.landed.append(threading.current_thread().name),
            on_fenced_out=lambda entries: self.fenced_out.append([e.get("seq") for e in entries]),
        )


@pytest.fixture
def plain(redis_client: redis.Redis) -> Publisher:
    return Publisher(redis_client, combined_maxlen=1_000_000, retention_seconds=3600)


@pytest.fixture
def fence(redis_client: redis.Redis) -> int:
    return Semaphore(redis_client).acquire(TOKEN, "c0", "r1", global_limit=10, router_limit=None, ttl=60.0)


@pytest.fixture
def gated(plain: Publisher) -> Iterator[GatedBatchPublisher]:
    pub = GatedBatchPublisher(plain)
    yield pub
    pub.gate.set()
    pub.close()


def stream(client: redis.Redis) -> list[dict[str, Any]]:
    return decoded(client.xrange(keys.customer_stream("c0")))


def failures(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("mtmon_worker_publish_failures_total", {"reason": reason}) or 0.0


def test_monitor_publisher_submit_returns_before_the_publish_lands(
    redis_client: redis.Redis, gated: GatedBatchPublisher, fence: int
) -> None:
    run = Monitor(gated, fence)
    run.publishes.submit([sample(0, fence)], received=time.monotonic())
    assert gated.held.wait(5)  # in flight, held: the monitor's thread is back already
    assert run.publishes.in_flight
    assert run.publishes.settle(wait=False) is None  # not known yet: nothing waited for
    gated.gate.set()
    assert run.publishes.settle() is True
    assert run.report.samples == 1 and run.landed == [threading.current_thread().name]
    assert [e["seq"] for e in stream(redis_client)] == [0]


def test_monitor_publisher_fenced_out_stops_the_lease_without_the_monitor_waiting(
    redis_client: redis.Redis, gated: GatedBatchPublisher, fence: int
) -> None:
    run = Monitor(gated, fence)
    redis_client.delete(keys.customer_owner("c0"))  # another producer took the customer
    before = failures("fenced-out")
    run.publishes.submit([sample(0, fence)], received=time.monotonic())
    assert gated.held.wait(5)
    assert not run.lease.stop_event.is_set()
    gated.gate.set()
    # The publisher thread stops the lease: the monitor never settled (its read is woken).
    wait_for(run.lease.stop_event.is_set, what="the lease's stop")
    assert run.lease.stop_reason == LEASE_LOST
    assert run.publishes.in_flight and run.fenced_out == []
    assert run.publishes.settle() is False
    assert run.fenced_out == [["0"]]  # the run gives its seq back, on its own thread
    assert failures("fenced-out") == before + 1
    assert run.report.samples == 0 and run.landed == []
    assert stream(redis_client) == []


def test_monitor_publisher_report_observes_only_the_entries_that_landed_in_order(
    redis_client: redis.Redis, plain: Publisher, fence: int
) -> None:
    batch = BatchPublisher(plain)
    try:
        run = Monitor(batch, fence)
        for seq, rate in enumerate((1000, 2000, 3000)):
            run.publishes.submit([sample(seq, fence, rate)], received=time.monotonic())
        assert run.publishes.settle() is True  # each submit settled the one before it
        redis_client.delete(keys.customer_owner("c0"))  # fenced out from here on
        run.publishes.submit([sample(3, fence, 4000)], received=time.monotonic())
        assert run.publishes.settle() is False
    finally:
        batch.close()
    assert list(run.report.download.values) == [1000, 2000, 3000]
    assert [e["seq"] for e in stream(redis_client)] == [0, 1, 2]
    assert run.lease.stop_reason == LEASE_LOST


def test_monitor_publisher_status_goes_out_after_the_sample_in_flight(
    redis_client: redis.Redis, gated: GatedBatchPublisher, fence: int
) -> None:
    run = Monitor(gated, fence)
    run.publishes.submit([sample(0, fence)], received=time.monotonic())
    assert gated.held.wait(5)
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(run.publishes.publish([status("offline", 1, fence)]))
    )
    waiter.start()
    gated.gate.set()
    waiter.join(10)
    assert result == [True]
    # The status waited for the sample's outcome before it was handed over: two batches,
    # the sample's first, and both in the stream and the report in the order made.
    assert gated.sizes == [1, 1]
    assert [(e["type"], e["seq"]) for e in stream(redis_client)] == [("traffic", 0), ("offline", 1)]
    assert run.report.samples == 1 and not run.publishes.in_flight


def test_monitor_publisher_withdrawn_sample_is_a_failed_publish(
    redis_client: redis.Redis, plain: Publisher, fence: int
) -> None:
    other = Semaphore(redis_client).acquire("s9:1", "c9", "r1", global_limit=10, router_limit=None, ttl=60.0)
    pub = GatedBatchPublisher(plain, wait_timeout=0.3)
    try:
        pub.submit_many(
            [traffic_from_row(ROW, replace(META, customer_id="c9"), session_id="s9", seq=0, fence=other)],
            token="s9:1",
            fence=other,
        )
        assert pub.held.wait(5)  # another monitor's batch holds the thread
        run = Monitor(pub, fence)
        before = failures("redis")
        run.publishes.submit([sample(0, fence)], received=time.monotonic())
        # The monitor settles before its next publish: not sent by the deadline, withdrawn.
        assert run.publishes.settle() is False
        assert failures("redis") == before + 1
        pub.gate.set()
    finally:
        pub.gate.set()
        pub.close()
    assert run.report.samples == 0 and run.landed == [] and not run.lease.stop_event.is_set()
    assert stream(redis_client) == []


def test_monitor_publisher_closed_batch_publisher_is_a_failed_publish(
    redis_client: redis.Redis, plain: Publisher, fence: int
) -> None:
    batch = BatchPublisher(plain)
    batch.close()
    run = Monitor(batch, fence)
    before = failures("redis")
    run.publishes.submit([sample(0, fence)], received=time.monotonic())
    assert not run.publishes.in_flight
    assert failures("redis") == before + 1
    assert run.publishes.publish([status("stopped", 1, fence)]) is False
    assert stream(redis_client) == []


def test_monitor_publisher_settle_landed_takes_only_a_landed_outcome_and_never_waits(
    redis_client: redis.Redis, gated: GatedBatchPublisher, fence: int
) -> None:
    run = Monitor(gated, fence)
    assert run.publishes.settle_landed() is True  # nothing in flight
    run.publishes.submit([sample(0, fence)], received=time.monotonic())
    assert gated.held.wait(5)
    assert run.publishes.settle_landed() is False and run.publishes.in_flight  # still out
    gated.gate.set()
    wait_for(lambda: run.publishes.settle_landed(), what="the sample to land")
    assert run.report.samples == 1 and run.landed and not run.publishes.in_flight
    # A failed one is left for the loop (it may publish, or stop the lease).
    redis_client.delete(keys.customer_owner("c0"))
    run.publishes.submit([sample(1, fence)], received=time.monotonic())
    wait_for(run.lease.stop_event.is_set, what="fenced out")
    assert run.publishes.settle_landed() is False and run.publishes.in_flight
    assert run.publishes.settle() is False and run.report.samples == 1
