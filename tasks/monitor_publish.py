"""A monitor's fenced publishes, its samples handed over without waiting for them.

Each sample used to cross three threads and come back: router reader -> monitor ->
batch publisher -> the monitor again, woken by its publish's result (docs/scaling.md,
"Where the CPU goes": at 1,000 monitors a wake-up takes the interpreter lock from 1,250
threads). A monitor now hands its sample to the batch publisher (tasks/publisher.py
`submit_many`) and goes back to reading; it takes the outcome later, on its own thread,
when it is known anyway: before its next publish (a second later, for samples), at the
top of each round of its loop, and before it ends. What it keeps:

- One publish in flight per monitor. The next one (sample, status event, ping replies)
  first settles the one before, waiting for it only if it is still out. So a session's
  entries reach the stream in the order the monitor made them (a status event never
  passes a sample), and the session report observes the ones that landed in that order.
- Fenced out stops the run at once: the publisher thread requests the lease's stop
  (LEASE_LOST) as soon as Redis refuses, which wakes the monitor's read.
- Everything else of an outcome (the report, the metrics, Redis full, the backoff) is
  taken by the monitor's thread, so nothing the monitor touches is touched by two threads.
- A publish still has its deadline (the batch publisher's wait_timeout): past it, an
  entry not sent is withdrawn and never sent, one sent is reported as failed
  ("may still be applied"), as when the monitor waited.

In the steady state (streaming an interface, no trouble, no ping) a sample does not even
wake its monitor: the router's reader thread builds it and hands it over while the
monitor sleeps in its read (tasks/monitor.py `_sample_on_reader`, routeros `Stream.on_data`),
taking the last outcome first only if it landed (`settle_landed`); any other outcome
leaves the sample to the monitor's loop.

Status events are published and waited for (`publish`): the monitor needs to know
whether `stopped` or `resumed` landed, and they are rare.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import redis

from tasks import metrics
from tasks.leases import LeaseHandle
from tasks.lifecycle import LEASE_LOST
from tasks.publisher import BatchPublisher, PendingPublish
from tasks.report import SessionReport

log = logging.getLogger(__name__)


class _InFlight(NamedTuple):
    pending: PendingPublish
    entries: Sequence[Mapping[str, str]]
    received: float | None  # a sample's reading time (monotonic), else None


class MonitorPublisher:
    """One monitor run's publishes (see the module). Used by the run's own thread, or by
    the router's reader thread while the run is parked in its read (`settle_landed`,
    `submit`: tasks/monitor.py _sample_on_reader; the two never run at once), except
    `_on_done`, which the publisher thread calls."""

    def __init__(
        self,
        batch: Callable[[], BatchPublisher],
        *,
        token: str,
        fence: int,
        lease: LeaseHandle,
        report: SessionReport,
        on_out_of_memory: Callable[[], None],
        on_sample_landed: Callable[[], None],
        on_fenced_out: Callable[[Sequence[Mapping[str, str]]], None],
    ) -> None:
        """`batch`: the process's batch publisher (asked at each publish);
        `on_out_of_memory`: Redis refused a publish at maxmemory (the run's Redis-full
        handling, which may publish); `on_sample_landed`: a sample is in the stream;
        `on_fenced_out`: the fence refused these entries (the run gives their seqs back:
        nothing was built after them, the next entry is the run's unfenced `stopped`)."""
        self._batch = batch
        self.token = token
        self.fence = fence
        self.lease = lease
        self.report = report
        self._on_out_of_memory = on_out_of_memory
        self._on_sample_landed = on_sample_landed
        self._on_fenced_out = on_fenced_out
        self._in_flight: _InFlight | None = None

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None

    def submit(self, entries: Sequence[Mapping[str, str]], *, received: float | None = None) -> None:
        """Hand `entries` (one fenced script call: in order, all or none) to the batch
        publisher without waiting. `received`: the sample's reading time, when the last
        entry is a sample (its latency is measured from it, to when Redis answered)."""
        self.settle()  # one in flight: the order of the stream is the order made here
        try:
            pending = self._batch().submit_many(
                entries, token=self.token, fence=self.fence, on_done=self._on_done
            )
        except redis.RedisError as exc:  # the batch publisher is closed (the worker stops)
            self._failed(exc)
            return
        self._in_flight = _InFlight(pending, entries, received)

    def publish(self, entries: Sequence[Mapping[str, str]]) -> bool:
        """Publish and wait for the outcome; True when the entries landed."""
        self.submit(entries)
        return bool(self.settle())

    def settle(self, wait: bool = True, *, final: bool = False) -> bool | None:
        """Take the outcome of the publish in flight: True when it landed, False when
        not, None when none was in flight (or, with `wait` false, it still is).
        `final`: the run is ending, Redis full is only counted (nothing more is published
        on its account)."""
        in_flight = self._in_flight
        if in_flight is None or (not wait and not in_flight.pending.done()):
            return None
        self._in_flight = None  # before any handler runs: it may publish
        try:
            ids = in_flight.pending.result()
        except redis.OutOfMemoryError:
            # Redis is at maxmemory (noeviction): these entries were refused before they
            # wrote anything. The lease is kept (renewals need no new memory and get
            # through), samples are dropped until memory is freed, the run says so once.
            metrics.PUBLISH_FAILURES.labels("redis-oom").inc()
            if not final:
                self._on_out_of_memory()
            return False
        except redis.RedisError as exc:
            self._failed(exc)
            return False
        if ids is None:
            # The publisher thread stopped the lease already (_on_done); said again in
            # case it was this thread that withdrew the publish meanwhile.
            metrics.PUBLISH_FAILURES.labels("fenced-out").inc()
            self.lease.request_stop(LEASE_LOST)
            self._on_fenced_out(in_flight.entries)
            return False
        for entry in in_flight.entries:
            self.report.observe(entry)
        if in_flight.received is not None:
            metrics.SAMPLES_PUBLISHED.inc()
            # settled_at is stamped by the done-callback, which runs just after the result
            # is visible: a monitor that was waiting for it may look first (then now is
            # when it was answered, give or take that wake-up).
            settled_at = in_flight.pending.settled_at or time.monotonic()
            metrics.PUBLISH_LATENCY.observe(settled_at - in_flight.received)
            self._on_sample_landed()
        return True

    def settle_landed(self) -> bool:
        """Nothing in flight after it: True when nothing was, or when the publish in
        flight landed (its outcome taken here, as `settle` does). False, the publish left
        in flight, while it is out or when it failed: that outcome is the run loop's (it
        may publish or stop the lease). Never blocks, never publishes, never stops the
        lease: safe on the router's reader thread (tasks/monitor.py _sample_on_reader)."""
        in_flight = self._in_flight
        if in_flight is None:
            return True
        if not in_flight.pending.landed:
            return False
        return bool(self.settle())

    def _failed(self, exc: redis.RedisError) -> None:
        # Redis trouble is the keeper's call: it declares the lease lost after the TTL.
        # A timed-out publish may still run when a frozen Redis resumes: its seq is spent
        # either way (the run spends it when it hands the entries over).
        log.warning("monitor %s: publish failed: %s", self.token, exc)
        metrics.PUBLISH_FAILURES.labels("redis").inc()

    def _on_done(self, pending: PendingPublish) -> None:
        """On the publisher thread: fenced out means someone else owns the customer now,
        so stop at once rather than at the next publish (request_stop is thread-safe: the
        keeper calls it too)."""
        if pending.fenced_out:
            self.lease.request_stop(LEASE_LOST)
