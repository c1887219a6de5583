"""The monitor task: one customer's traffic, once per interval, into the streams.

One run executes one attempt of a session (tasks.lifecycle names the parts;
docs/architecture.md draws the whole life):

1. wanted?  A message older than its expiry (Redis time), or one whose session no
            longer wants this attempt, ends at once and takes nothing of a newer one.
2. claim    The run claims the attempt's reservation for itself. A second delivery of
            the same message finds it claimed and ends: one producer per customer.
3. loop     The state machine below, until a stop reason appears.
4. end      stopped: row closed, `stopped` published, lease released;
            handover (worker shutdown): lease released at once, row left wanted, so the
            reconciler launches the next attempt on another worker;
            lease lost: touch nothing, another attempt may own the customer now.

While it holds the lease a run is in one of three phases:

    WAITING --retry time--> OPENING --stream issued--> STREAMING
       ^                       |                           |
       +----- router error ----+----- trouble -------------+

Trouble (router unreachable, interface or queue gone, silence) publishes one status
event per change (`offline`, `reconnecting`) and backs off with jitter; the slot is
kept. A router that refuses the connection or the login is retried when the process's
router hub retries it (one shared backoff per router, tasks/hub.py), not on a ladder
of each monitor's own. A client that stays `reconnecting` past the stall time is
`offline` with the reason its re-dials fail. A router that denies the API user the
command (`not enough permissions`) is retried on a long backoff and, when it still
denies it after MONITOR_DENIED_STOP_AFTER, the session stops with that reason: a
configuration error should read as a stopped monitor, not hold a slot for hours.
The first sample after trouble is announced by `resumed`. A stop (stop key,
revoke, worker shutdown, lease lost, max duration) ends the loop within a second in
any phase: the lease's stop event wakes whatever the run is waiting on. A PPPoE
monitor WAITING for its interface is also woken when its router's watch sees the
customer's session come up (tasks/watch.py, through the process's lease keeper): it
opens at once rather than at the end of its backoff.

Beside its traffic, a run pings its customer's address from the router (tasks/pinger.py)
on the same shared connection, drained from this loop: one `latency` entry per reply,
published with the next sample in one fenced script call (PROBE_HOLD), and the latest
recent RTT on each sample. Its `started` event says whether it pings
(`on`), and why not (`off`, `no address`, `capped`: PING_MAX_PER_ROUTER, tasks/ping_cap.py).

Samples are published without waiting for Redis's answer (tasks/monitor_publish.py); in
the steady state the router's reader thread publishes them itself while the run sleeps
in its read (`_sample_on_reader`), so a sample wakes no monitor thread.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from enum import Enum
from typing import Any

import redis
from celery.exceptions import Ignore

from common.backoff import Backoff
from common.text import as_text
from models import ActualState, DesiredState, MonitorSession
from models.resolution import ResolutionError
from routeros import LoginError, RouterError
from settings import get_settings
from tasks import alert_hooks, keys, lifecycle, metrics, runtime, session_reports, sessions
from tasks.alert_eval import RttEvaluator
from tasks.app import app
from tasks.hub import RouterHandle, get_hub
from tasks.keys import customer_stream, session_ping
from tasks.leases import LeaseHandle
from tasks.lifecycle import LEASE_LOST, MAX_DURATION, NOT_WANTED, REVOKED, WORKER_SHUTDOWN, Token
from tasks.message import (
    GAP,
    LATENCY,
    PING_CAPPED,
    PING_NO_ADDRESS,
    PING_OFF,
    PING_ON,
    MessageError,
    decode_entry,
    latency_entry,
    status_entry,
    traffic_from_row,
)
from tasks.monitor_publish import MonitorPublisher
from tasks.ping_cap import PingSlot
from tasks.pinger import Pinger, Probe
from tasks.report import new_report
from tasks.semaphore import SemaphoreError
from tasks.sources import InterfaceSource, QueueSource, Reading, Source, all_zero
from tasks.targets import MonitorPlan, load_attempt
from tasks.worker import shutting_down

log = logging.getLogger(__name__)

# Longest wait for a sample before the loop looks around again (in the steady state, when
# the router's reader thread takes the samples, the stall time since the last one). Stops
# do not wait for it: the lease's stop event wakes the source's read at once. Waking every
# monitor 5 times a second instead cost a worker half its CPU at 1,000 monitors (GIL
# hand-offs).
CHECK_EVERY = 1.0
# Waits that nothing wakes (the shared router connection logging in): short.
OPEN_WAIT = 0.2
# Some routers keep streaming zeros for an interface that vanished (docs/routeros.md,
# Unverified behaviour): after this many all-zero samples in a row, ask whether the
# interface still exists, at most once per PRESENCE_CHECK_EVERY seconds. One short
# print, and only for idle-looking monitors.
ZERO_SAMPLES_BEFORE_CHECK = 3
PRESENCE_CHECK_EVERY = 5.0
PRESENCE_CHECK_TIMEOUT = 0.5
# Waking when the router hub retries a failed login: spread over this many seconds so
# the monitors of one router do not all queue on the same login at once.
HUB_RETRY_JITTER = 0.25
# A command the API user may not run fails the same way until someone changes the
# user's group: retried rarely (first after 2-4 s, at most every 5 minutes).
DENIED_BACKOFF_INITIAL = 4.0
DENIED_BACKOFF_MAX = 300.0
# Reading back for the session's last seq: latency entries (which carry none) may follow
# it, one a second while the source was down: pages of SEQ_PAGE, at most SEQ_PAGES.
SEQ_PAGE = 20
SEQ_PAGES = 25
# Ping replies wait for the monitor's next sample and go out with it, in the same fenced
# script call: one publish and one wait for the loop a second, not one per reply. A reply
# that waited this long (no sample came: the source is down, or MONITOR_INTERVAL is
# longer) goes on its own.
PROBE_HOLD = 1.5


class Phase(Enum):
    WAITING = "waiting"  # backing off before (re)opening the source
    OPENING = "opening"  # issuing the stream; the shared connection may be logging in
    STREAMING = "streaming"  # reading samples


# Routed to `monitors` by celeryconfig.task_routes; early ack and no result on purpose.
@app.task(name=lifecycle.MONITOR_TASK, bind=True, acks_late=False, ignore_result=True)  # type: ignore[untyped-decorator]  # celery is untyped
def monitor(
    self: Any,
    session_id: str,
    attempt: int,
    fence: int | None = None,
    enqueued_ms: int | None = None,
    **shown: str,
) -> str:
    """Run one monitor attempt to its end; the return value is the stop reason (for logs).

    `fence` is the reservation's, shown in Flower; the run takes it again when it claims
    the lease rather than trusting a queued message. `shown` (customer_id, username,
    router, interface) is only there for Flower to display and search.
    """
    token = Token(str(session_id), int(attempt))
    task_id = getattr(self.request, "id", None) or token.task_id
    reason = MonitorRun(token, task_id, enqueued_ms).run()
    if reason == REVOKED:
        # A cooperative exit would read as SUCCESS in Flower; say what happened instead.
        self.send_event("task-revoked", terminated=False, signum=None, expired=False)
        raise Ignore()
    return reason


class MonitorRun:
    def __init__(self, token: Token, task_id: str, enqueued_ms: int | None = None) -> None:
        self.token = token
        self.task_id = task_id
        self.enqueued_ms = enqueued_ms
        self.settings = get_settings()
        self.rt = runtime.current()
        self.claimant = lifecycle.new_claimant()
        self.fence = 0
        self.seq = 0
        self.lease: LeaseHandle | None = None
        self.publishes: MonitorPublisher | None = None  # once claimed
        self.plan: MonitorPlan | None = None
        self.trouble: str | None = None  # the status kind published while not producing
        self.trouble_reason = ""  # ...and its reason
        self.redis_full = False  # Redis refused our last publish for lack of memory
        # The loop's state (see the module docstring).
        self.phase = Phase.OPENING
        self.retry_at = 0.0
        self.last_life = time.monotonic()  # last sample, or last (re)open
        self.client_reconnecting = False
        self.zero_run = 0
        self.next_presence_check = 0.0
        self.backoff = Backoff()
        # Since when (monotonic) the router has denied every attempt, and its words.
        self.denied_since: float | None = None
        self.denied_reason = ""
        self.denied_backoff = Backoff(DENIED_BACKOFF_INITIAL, DENIED_BACKOFF_MAX)
        # The router-side ping (tasks/pinger.py): what `started` says of it, the run's
        # place under the router's cap, and the ping itself once the connection is ours.
        self.ping_state = PING_OFF
        self.ping_slot: PingSlot | None = None
        self.pinger: Pinger | None = None
        self.held: list[dict[str, str]] = []  # latency entries waiting for the next sample
        self.held_since = 0.0  # when the oldest of them was taken (monotonic)
        self.report = new_report(token.session_id, self.settings)  # what the session measured
        # rtt alert rules over the ping's replies (tasks/alert_eval.py); written by the
        # process's alert writer thread (tasks/alert_hooks.py), never on this loop.
        self.alerting: alert_hooks.Alerting | None = None
        self.rtt_alerts: RttEvaluator | None = None
        self.rules_version = -1

    @property
    def stall_after(self) -> float:
        return max(3 * self.settings.monitor_interval, 3.0)

    # -- 1 and 2: wanted? claim -------------------------------------------------------------

    def run(self) -> str:
        if lifecycle.message_expired(self.enqueued_ms, self.rt.semaphore.now_ms(), self.settings):
            log.info("monitor %s: message expired in the queue; the reconciler has moved on", self.token)
            return NOT_WANTED
        # One transaction: the row, and the customer's plan when the row wants this attempt.
        row, plan = load_attempt(
            self.token.session_id,
            lambda r: r.attempt == self.token.attempt and r.desired_state == DesiredState.RUNNING,
        )
        if row is None or plan is None:
            return self._not_wanted(row)
        if isinstance(plan, ResolutionError):
            # The customer changed under us (deleted, suspended, ...): a restart would fail
            # the same way, so the session ends with the data layer's words. Anything else
            # (database down) propagates: the reservation expires, the reconciler retries.
            return self._unresolvable(row, plan)
        self.plan = plan
        if not self._claim():
            return NOT_WANTED
        reason = "error"
        handle: RouterHandle | None = None
        source: Source | None = None
        try:
            handle = get_hub().checkout(self.plan.endpoint)
            source = self._make_source(handle)
            self._wake_on_stop(source.wake)
            self.pinger = self._make_pinger(handle)
            reason = self._loop(handle, source)
        except Exception as exc:
            log.exception("monitor %s failed", self.token)
            reason = f"error: {type(exc).__name__}"
        finally:
            # The ping first: no latency entry after the loop ended, none after `stopped`.
            if self.pinger is not None:
                _quietly(self.pinger.close)
            if self.ping_slot is not None:
                _quietly(self.ping_slot.release)
            if source is not None:
                _quietly(source.close)
            if handle is not None:
                _quietly(handle.close)
            self._finish(reason)
        return reason

    def _not_wanted(self, row: MonitorSession | None) -> str:
        # Stopped before it started, or superseded by a newer attempt: give back only a
        # reservation of this very attempt nobody claimed; never touch a newer attempt's row.
        if row is not None:
            self._release(str(row.customer_id), row.router_id)
            if row.attempt == self.token.attempt:
                sessions.close(self.token.session_id, "stopped before start", attempt=self.token.attempt)
        return NOT_WANTED

    def _unresolvable(self, row: MonitorSession, exc: ResolutionError) -> str:
        reason = f"cannot resolve target: {exc}"
        log.warning("monitor %s: %s", self.token, reason)
        if session_reports.close_from_stream(self.rt.redis, row, reason, attempt=self.token.attempt):
            lifecycle.publish_stopped(self.rt.publisher, row, reason)
        self._release(str(row.customer_id), row.router_id)
        return reason

    def _release(self, customer_id: str, router_id: str) -> bool:
        """Give back what this run holds, if Redis answers; otherwise the lease's TTL does.
        A lease another run claimed is left alone (the claimant check in the script).
        True when this run's lease was there and is gone now."""
        try:
            return self.rt.semaphore.release(str(self.token), customer_id, router_id, claimant=self.claimant)
        except redis.RedisError as exc:
            log.warning("monitor %s: release failed (the lease TTL frees it): %s", self.token, exc)
            return False

    def _claim(self) -> bool:
        plan = self._plan()
        try:
            # The reservation made by start/reconciler becomes this run's; one that expired
            # in the queue is re-taken if the customer and a slot are still free.
            self.fence = self.rt.semaphore.claim(
                str(self.token),
                plan.customer_id,
                plan.router_id,
                self.claimant,
                global_limit=self.settings.max_concurrent_monitors,
                router_limit=plan.router_limit,
                ttl=self.settings.monitor_lease_ttl,
            )
        except (SemaphoreError, redis.RedisError) as exc:
            # Claimed by another run (a second delivery), the customer or the last slot
            # taken meanwhile, or Redis away: this run takes nothing and touches nothing.
            log.warning("monitor %s: not claimed, this delivery ends: %s", self.token, exc)
            return False
        started = sessions.set_state(
            self.token.session_id,
            self.token.attempt,
            ActualState.RUNNING,
            task=self.task_id,
            started=True,
            only_if_wanted=True,
        )
        if not started:
            # Stopped meanwhile, or the reconciler moved to a newer attempt (then the
            # attempt condition keeps this from touching the newer attempt's row).
            self._release(plan.customer_id, plan.router_id)
            sessions.close(self.token.session_id, "stopped before start", attempt=self.token.attempt)
            return False
        self.lease = self.rt.keeper().register(
            str(self.token),
            plan.customer_id,
            plan.router_id,
            session_id=self.token.session_id,
            claimant=self.claimant,
            task_id=self.task_id,
            stop_event=_WakingEvent(),
        )
        if plan.kind == "interface":
            self.lease.on_session_up = self._lease_stop_event().nudge.set
        self.seq = self._next_seq()
        self.report = session_reports.for_attempt(
            self.rt.redis, plan.meta, self.token.session_id, self.token.attempt
        )
        self.publishes = MonitorPublisher(
            self.rt.batch_publisher,
            token=str(self.token),
            fence=self.fence,
            lease=self.lease,
            report=self.report,
            on_out_of_memory=self._redis_out_of_memory,
            on_sample_landed=self.backoff.reset,
            on_fenced_out=self._unspend_seq,
        )
        metrics.RUNS.labels("first" if self.token.attempt == 1 else "restart").inc()
        self.ping_state = self._take_ping_slot()
        self._publish_status("started", lifecycle.started_reason(self.token.attempt), ping=self.ping_state)
        return True

    def _take_ping_slot(self) -> str:
        """Will this run ping? Takes its place under the router's cap when it will."""
        plan = self._plan()
        if not self.settings.monitor_ping or self._ping_off_at_start():
            return PING_OFF
        if plan.ping_address is None and plan.ping_login is None:
            return PING_NO_ADDRESS
        slot = PingSlot(
            self.rt.redis,
            plan.router_id,
            str(self.token),
            self.settings.ping_max_per_router,
            self.settings.monitor_lease_ttl,
        )
        if not slot.take():
            log.info("monitor %s: runs without ping: %s", self.token, "the router's ping cap is reached")
            return PING_CAPPED
        self.ping_slot = slot
        return PING_ON

    def _ping_off_at_start(self) -> bool:
        """Was the session started with ping=false (every attempt keeps that choice)?"""
        try:
            return self.rt.redis.get(session_ping(self.token.session_id)) is not None
        except redis.RedisError as exc:
            log.warning("monitor %s: cannot read the session's ping choice, not pinging: %s", self.token, exc)
            return True

    # -- 3: the loop --------------------------------------------------------------------------

    def _loop(self, handle: RouterHandle, source: Source) -> str:
        lease = self._lease()
        deadline = time.monotonic() + self._plan().remaining_seconds
        while True:
            lease.progress()
            # The last sample's outcome, if Redis has answered by now (a second later for
            # the next sample: never waited for here).
            self._publishes().settle(wait=False)
            reason = self._stop_reason(deadline)
            if reason is not None:
                return reason
            if self.phase is Phase.WAITING:
                self._wait(lease)
            elif self.phase is Phase.OPENING:
                self._open(handle, source)
            else:
                self._stream(handle, source, deadline)
            self._ping()

    def _stop_reason(self, deadline: float) -> str | None:
        lease = self._lease()
        if lease.stop_event.is_set():
            return lease.stop_reason or lifecycle.STOP_REQUESTED
        if shutting_down.is_set():
            return WORKER_SHUTDOWN
        if time.monotonic() >= deadline:
            return MAX_DURATION
        if self.denied_since is not None:
            limit = self.settings.monitor_denied_stop_after
            if time.monotonic() - self.denied_since >= limit:
                return f"gave up after {limit:g}s: {self.denied_reason}"
        return None

    def _wait(self, lease: LeaseHandle) -> None:
        remaining = self.retry_at - time.monotonic()
        nudge = self._lease_stop_event().nudge
        if remaining > 0 and not nudge.is_set():
            nudge.wait(min(CHECK_EVERY, remaining))
        elif remaining > 0 and not lease.stop_event.is_set():
            # The customer's session came up (its router's watch said so): the
            # interface is there now, open it rather than wait out the backoff.
            log.info("monitor %s: session up, retrying now", self.token)
            nudge.clear()
            self.phase = Phase.OPENING
        else:
            nudge.clear()
            self.phase = Phase.OPENING

    def _open(self, handle: RouterHandle, source: Source) -> None:
        try:
            opened = source.open(wait=OPEN_WAIT)
        except RouterError as exc:
            # A login that failed leaves no client behind; a client that refuses new
            # commands is closed or failed for good: replace it.
            handle.invalidate()
            # The hub retries the router on one backoff for all its monitors: wake when
            # it will, rather than hit its remembered failure on a ladder of our own.
            retry = handle.retry_in()
            delay = retry + random.uniform(0, HUB_RETRY_JITTER) if retry > 0 else None
            self._back_off(source, "offline", router_trouble(exc), delay=delay)
            return
        if not opened:
            # The shared connection is still logging in; say so if it drags on (an
            # outage already said has its reason: a retry in progress changes nothing).
            if self.trouble is None and time.monotonic() - self.last_life > self.stall_after:
                self._trouble("offline", "router connection not ready")
            return
        self.phase = Phase.STREAMING
        self.last_life, self.client_reconnecting = time.monotonic(), False
        if self.pinger is not None:
            self.pinger.source_opened()  # a reconnected customer may have a new address

    def _stream(self, handle: RouterHandle, source: Source, deadline: float) -> None:
        timeout = CHECK_EVERY
        if self._steady():
            # Samples are taken on the reader thread (_sample_on_reader) and wake nobody:
            # wake when the stream would count as silent, and at least once a renewal
            # interval (while no sample comes, the loop's progress is what keeps the
            # lease). A stop wakes the read anyway.
            silent_in = self.last_life + self.stall_after - time.monotonic()
            timeout = max(CHECK_EVERY, min(silent_in, self.settings.monitor_renew_interval))
        timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        reading = source.read(timeout=timeout)
        if reading is None:
            silent = time.monotonic() - self.last_life > self.stall_after
            if silent and not self.client_reconnecting:
                # The stream went silent without the connection noticing: re-issue it.
                self._back_off(source, "reconnecting", f"no samples for {self.stall_after:g}s")
            elif silent:
                # The shared client keeps re-dialling (with its own backoff) and failing:
                # past a blip, say so with the reason the router gives.
                self._trouble("offline", f"router unreachable: {handle.last_error() or 'reconnecting'}")
            return
        if reading.kind == "sample":
            self._on_sample(handle, source, reading)
        elif reading.kind == "reconnecting":
            # The client re-dials and re-issues the stream itself: wait for it.
            self.client_reconnecting = True
            self._trouble("reconnecting", reading.reason)
        elif reading.kind == "resumed":
            self.client_reconnecting, self.last_life = False, time.monotonic()
        elif reading.kind == "denied":
            self._denied(source, reading.reason)
        else:
            # offline (a queue poll failed), gone (interface or queue missing), failed
            # (the client gave up: replace it).
            if reading.kind == "failed":
                handle.invalidate()
            self._back_off(source, "offline", reading.reason)

    def _on_sample(self, handle: RouterHandle, source: Source, reading: Reading) -> None:
        plan = self._plan()
        self.last_life, self.client_reconnecting = time.monotonic(), False
        self.zero_run = self.zero_run + 1 if all_zero(reading.data) else 0
        if (
            plan.kind == "interface"
            and self.zero_run >= ZERO_SAMPLES_BEFORE_CHECK
            and time.monotonic() >= self.next_presence_check
        ):
            self.next_presence_check = time.monotonic() + PRESENCE_CHECK_EVERY
            if not self._interface_present(handle):
                self.zero_run = 0
                self._back_off(source, "offline", f"interface {plan.interface} is gone")
                return
        if self.trouble is not None:
            self._recovered()  # announced before the first sample it announces
        self.denied_since = None
        self.denied_backoff.reset()
        self._publish_sample(reading)  # the backoff is reset once it lands (on_sample_landed)

    def _steady(self) -> bool:
        """Streaming with nothing to say or to hold: the samples may be taken on the
        router's reader thread (_sample_on_reader). Interface sources only (a queue
        source's samples come from its router's poll thread), and not while the run
        pings: its replies and its poll are the loop's."""
        return (
            self.phase is Phase.STREAMING
            and self._plan().kind == "interface"
            and self.trouble is None
            and not self.client_reconnecting
            and not self.redis_full
            and self.denied_since is None
            and self.pinger is None
            and not self.held
        )

    def _sample_on_reader(self, data: dict[str, str]) -> bool:
        """A sample taken on the router's reader thread while the loop is parked in its
        read (routeros Stream.on_data, under the stream's lock: the loop cannot run
        meanwhile, so this touches the run's state alone). It does what _on_sample does
        in the steady state, built and handed to the batch publisher here, so the sample
        wakes no thread but the publisher's. Anything else (trouble, a presence check
        due, the last publish not landed, a stop, a row it cannot use) returns False and
        the loop takes the sample as before. Never blocks."""
        if not self._steady() or self._lease().stop_event.is_set():
            return False
        now = time.monotonic()
        zero_run = self.zero_run + 1 if all_zero(data) else 0
        if zero_run >= ZERO_SAMPLES_BEFORE_CHECK and now >= self.next_presence_check:
            return False  # the loop asks the router whether the interface is still there
        if not self._publishes().settle_landed():
            return False  # the last publish is still out or failed: the loop takes its outcome
        try:
            entry = self._sample_entry(data)
        except (ValueError, ArithmeticError):
            return False  # the loop skips it and says why
        self.last_life, self.zero_run = now, zero_run
        self._lease().progress()
        self._submit([entry], received=now)
        return True

    def _back_off(self, source: Source, kind: str, reason: str, delay: float | None = None) -> None:
        """Trouble: say so (once per change), drop the source, retry after a backoff
        (or after `delay`, when someone else decides when to retry)."""
        self._trouble(kind, reason)
        source.close()
        self.phase = Phase.WAITING
        self.retry_at = time.monotonic() + (self.backoff.next_delay() if delay is None else delay)

    def _denied(self, source: Source, reason: str) -> None:
        """The API user may not run our command: offline with the router's words, a
        long backoff, and the clock towards MONITOR_DENIED_STOP_AFTER starts."""
        if self.denied_since is None:
            self.denied_since = time.monotonic()
        self.denied_reason = reason
        self._back_off(source, "offline", reason, delay=self.denied_backoff.next_delay())

    def _interface_present(self, handle: RouterHandle) -> bool:
        """Does the monitored interface still exist? Unknown counts as yes (no flapping)."""
        try:
            rows = handle.call(
                "/interface/print",
                queries=(f"?name={self._plan().interface}",),
                proplist=("name",),
                timeout=PRESENCE_CHECK_TIMEOUT,
            )
        except RouterError:
            return True
        return rows is None or bool(rows)

    def _make_source(self, handle: RouterHandle) -> Source:
        plan = self._plan()
        interval = self.settings.monitor_interval
        if plan.kind == "interface":
            return InterfaceSource(handle, plan.interface, interval, on_sample=self._sample_on_reader)
        return QueueSource(handle, plan.queue_query, interval)

    def _make_pinger(self, handle: RouterHandle) -> Pinger | None:
        plan, slot = self._plan(), self.ping_slot
        if slot is None:
            return None
        return Pinger(
            handle,
            slot,
            address=plan.ping_address,
            login=plan.ping_login,
            service_type=plan.meta.service_type,
            label=str(self.token),
        )

    def _ping(self) -> None:
        """Take the ping replies that arrived; publish what is held unless a sample is due
        to take it along (none while Redis is full: the samples' path says when it takes
        writes again)."""
        self._take_probes(poll=True)
        if self.held and (
            self.phase is not Phase.STREAMING or time.monotonic() - self.held_since >= PROBE_HOLD
        ):
            self._submit(self._release_held())

    def _take_probes(self, poll: bool = False) -> None:
        """Drain the ping (`poll`: also start it, look its address up, renew its cap place
        when due; never in a sample's way): each reply feeds the rtt alerts at once and is
        held as a `latency` entry for the next publish."""
        pinger = self.pinger
        if pinger is None:
            return
        try:
            probes = pinger.poll() if poll else pinger.take()
        except Exception:
            # A bug in the ping must not cost the customer's samples: go on without it.
            log.exception("monitor %s: ping failed, going on without it", self.token)
            self.pinger = None
            _quietly(pinger.close)
            return
        for probe in probes:
            if not self.redis_full:
                if not self.held:
                    self.held_since = time.monotonic()
                self.held.append(self._latency(probe))
            if self.settings.alerts and not probe.reply.summary:
                self._rtt_alerts(probe)

    def _release_held(self) -> list[dict[str, str]]:
        held, self.held = self.held, []
        return held

    def _rtt_alerts(self, probe: Probe) -> None:
        """Feed one reply to the customer's rtt rules; hand what fires or resolves to the
        writer, fenced by this run's lease."""
        if self.alerting is None:
            self.alerting = alert_hooks.alerting()
            plan = self._plan()
            self.rtt_alerts = RttEvaluator(
                plan.customer_id, plan.router_id, plan.meta.customer_name, self.settings.alert_resolve_s
            )
        evaluator, alerting = self.rtt_alerts, self.alerting
        if evaluator is None or alerting is None:
            return
        rules = alerting.rules
        if rules.version != self.rules_version:
            self.rules_version = rules.version
            evaluator.set_rules(rules.rules)
            mine = {r.id for r in evaluator.rules}
            subject = f"customer:{evaluator.customer_id}"
            evaluator.restore(rule_id for rule_id, s in rules.open if s == subject and rule_id in mine)
        if not evaluator.rules:
            return
        reply = probe.reply
        transitions = evaluator.probe(reply.rtt_ms if reply.status is None else None, time.time())
        metrics.ALERT_EVALUATIONS.labels("rtt").inc(len(evaluator.rules))
        if transitions:
            owner = (keys.customer_owner(evaluator.customer_id), str(self.token), self.fence)
            alerting.submit(transitions, owner)

    def _latency(self, probe: Probe) -> dict[str, str]:
        reply = probe.reply
        return latency_entry(
            self._plan().meta,
            address=probe.address,
            ping_seq=reply.seq,
            rtt_ms=reply.rtt_ms if reply.status is None else None,
            status=reply.status,
            loss_pct=probe.loss_pct,
            session_id=self.token.session_id,
            fence=self.fence,
        )

    def _wake_on_stop(self, wake: Callable[[], None]) -> None:
        self._lease_stop_event().wake = wake

    def _lease_stop_event(self) -> _WakingEvent:
        stop_event = self._lease().stop_event
        assert isinstance(stop_event, _WakingEvent)
        return stop_event

    # -- publishing -------------------------------------------------------------------------

    def _publish_sample(self, reading: Reading) -> None:
        """Hand the sample (and the ping replies held for it) over; its outcome is taken
        before the next publish (tasks/monitor_publish.py)."""
        # The last publish's outcome first: Redis full says so with a status event, which
        # takes the seq this sample would otherwise carry too.
        self._publishes().settle()
        plan = self._plan()
        assert reading.data is not None
        name = reading.data.get("name")
        if plan.kind == "queue" and name and name != plan.meta.interface:
            # A static customer's queue is found by its target address: once the router
            # names it, show the queue's own name, as for hotspot queues.
            plan = self.plan = replace(plan, meta=replace(plan.meta, interface=name))
        try:
            entry = self._sample_entry(reading.data)
        except (ValueError, ArithmeticError) as exc:
            # A row the router sent costs that sample, never the monitor: MessageError (a
            # ValueError) for any value parse_rate refuses, the rest a net under it.
            log.warning("monitor %s: unusable router row, sample skipped: %s", self.token, exc)
            metrics.PUBLISH_FAILURES.labels("unusable-row").inc()
            return
        if self.redis_full and not self._redis_writable_again():
            return
        self._take_probes()  # the replies that came with this sample go with it
        self._submit([*self._release_held(), entry], received=reading.received)

    def _sample_entry(self, data: dict[str, str]) -> dict[str, str]:
        return traffic_from_row(
            data,
            self._plan().meta,
            session_id=self.token.session_id,
            seq=self.seq,
            fence=self.fence,
            rtt_ms=self.pinger.recent_rtt() if self.pinger is not None else None,
        )

    def _status(self, kind: str, reason: str | None, ping: str | None = None) -> dict[str, str]:
        return status_entry(
            kind,
            self._plan().meta,
            session_id=self.token.session_id,
            seq=self.seq,
            fence=self.fence,
            reason=reason,
            ping=ping,
        )

    def _publish_status(self, kind: str, reason: str | None = None, ping: str | None = None) -> bool:
        """Publish a status event and wait for it; True when it landed. After whatever
        the run published before it (it never passes a sample in the stream)."""
        publishes = self._publishes()
        publishes.settle()  # first: its outcome may publish a status of its own (Redis full)
        entry = self._status(kind, reason, ping)
        self.seq += 1  # spent, published or not
        published = publishes.publish([entry])
        if published:
            metrics.STATUS_EVENTS.labels(kind).inc()
        return published

    def _submit(self, entries: list[dict[str, str]], received: float | None = None) -> None:
        """Hand `entries` over (fenced, in order, all or none) without waiting for them;
        `received`: the sample's reading time when the last entry is a sample."""
        # Traffic and status entries spend a seq, published or not (a fenced-out one gives
        # it back: _unspend_seq); latency entries have none. A timed-out publish may still
        # run when a frozen Redis resumes: its seq is spent either way, so no two entries
        # of a session ever share one.
        self.seq += sum("seq" in entry for entry in entries)
        self._publishes().submit(entries, received=received)

    def _unspend_seq(self, entries: Sequence[Mapping[str, str]]) -> None:
        """Fenced out: those entries never reached the stream and nothing was built after
        them (one publish in flight, settled before the next entry is made), so their seqs
        are the next entry's again (the unfenced `stopped`): no hole for a report rebuilt
        from the stream to see."""
        self.seq -= sum("seq" in entry for entry in entries)

    def _trouble(self, kind: str, reason: str) -> None:
        # Once per change, of kind or of reason: an outage that goes from "connection
        # lost" to "connection refused" says so, a steady one stays one event (retries
        # are backoff-bound, so a changing reason cannot flood the stream either).
        if (self.trouble, self.trouble_reason) == (kind, reason):
            return
        changed_kind = self.trouble != kind
        self.trouble, self.trouble_reason = kind, reason
        log.info("monitor %s: %s (%s)", self.token, kind, reason)
        self._publish_status(kind, reason)
        if changed_kind:
            self._record_state(ActualState.OFFLINE if kind == "offline" else ActualState.RECONNECTING)

    def _redis_out_of_memory(self) -> None:
        if self.redis_full:
            return
        self.redis_full = True
        log.warning(
            "monitor %s: %s: its samples are dropped until memory is freed (lease kept)",
            self.token,
            lifecycle.REDIS_OUT_OF_MEMORY,
        )
        # Written only if Redis has room by now; the row says it either way.
        self._publish_status("offline", lifecycle.REDIS_OUT_OF_MEMORY)
        self._record_state(ActualState.OFFLINE)

    def _redis_writable_again(self) -> bool:
        """Try `resumed` before the first sample after Redis was full; True once it landed."""
        if not self._publish_status("resumed", "redis accepts writes again"):
            return False
        self.redis_full = False
        log.info("monitor %s: redis accepts writes again", self.token)
        if self.trouble is None:
            self._record_state(ActualState.RUNNING)
        return True

    def _record_state(self, state: ActualState) -> None:
        # Never on the loop itself: a stalled PostgreSQL must not stop the samples (and,
        # through progress(), the lease). The process's writer applies it, or retries.
        self.rt.state_writer().set_state(self.token.session_id, self.token.attempt, state)

    def _recovered(self) -> None:
        self.trouble, self.trouble_reason = None, ""
        self._publish_status("resumed", "samples flowing again")
        self._record_state(ActualState.RUNNING)

    def _next_seq(self) -> int:
        """Continue the session's sequence across attempts: after its newest entry that
        carries a seq (latency entries do not). One short XREVRANGE unless this session's
        latency entries come first (its source was down while it pinged)."""
        stream, high = customer_stream(self._plan().customer_id), "+"
        try:
            for _ in range(SEQ_PAGES):
                page: Any = self.rt.redis.xrevrange(stream, max=high, count=SEQ_PAGE)
                for entry_id, fields in page or ():
                    entry = decode_entry(entry_id, fields)
                    if entry.get("session_id") != self.token.session_id:
                        return 0
                    if entry.get("type") not in (LATENCY, GAP):
                        return int(entry.get("seq") or 0) + 1
                if not page or len(page) < SEQ_PAGE:
                    return 0
                high = f"({as_text(page[-1][0])}"
        except (redis.RedisError, MessageError, ValueError):
            pass
        return 0

    # -- 4: the end -------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        plan, lease = self._plan(), self._lease()
        try:
            # The last sample's outcome before anything else: the report observes it, and
            # `stopped` comes after it in the stream.
            self._publishes().settle(final=True)
            if reason == LEASE_LOST:
                # Another attempt may own the customer already: touch nothing of theirs.
                log.warning("monitor %s: lease lost, stopped producing", self.token)
            elif reason in lifecycle.HANDOVER_REASONS:
                why = (
                    "worker shutting down" if reason == WORKER_SHUTDOWN else "router moved to another process"
                )
                self._publish_status("reconnecting", f"{why}: handing over")
                _quietly(
                    lambda: sessions.set_state(self.token.session_id, self.token.attempt, ActualState.PENDING)
                )
            else:
                # Close the row before giving the slot back, or the reconciler could see
                # desired=running without a lease and restart it. The first reason recorded
                # wins (a stop request's words over the revoke that came with it).
                try:
                    reason = (
                        session_reports.close_with_report(
                            self.token.session_id, reason, self.report, attempt=self.token.attempt
                        )
                        or reason
                    )
                except Exception as exc:
                    # PostgreSQL is away: the writer closes the row when it is back. Until
                    # then a stop request's key keeps the reconciler from restarting it.
                    log.warning(
                        "monitor %s: could not close its session row (%s); retried later",
                        self.token,
                        type(exc).__name__,
                    )
                    self.rt.state_writer().close(
                        self.token.session_id, reason, self.token.attempt, self.report
                    )
                if not self._publish_status("stopped", reason):
                    # Fenced out or Redis trouble: the last word goes out unfenced.
                    _quietly(lambda: self.rt.publisher.publish_status(self._status("stopped", reason)))
        finally:
            self.rt.keeper().unregister(lease)
            released = self._release(plan.customer_id, plan.router_id)
            if reason in lifecycle.HANDOVER_REASONS:
                # Said apart from a lease left to expire: the next attempt may start now.
                log.info("monitor %s handed over: lease %s", self.token, "released" if released else "gone")
            log.info("monitor %s ended: %s", self.token, reason)

    def _plan(self) -> MonitorPlan:
        assert self.plan is not None, "the plan is set before the lease is claimed"
        return self.plan

    def _lease(self) -> LeaseHandle:
        assert self.lease is not None, "the loop runs only with a claimed lease"
        return self.lease

    def _publishes(self) -> MonitorPublisher:
        assert self.publishes is not None, "publishing starts once the lease is claimed"
        return self.publishes


class _WakingEvent(threading.Event):
    """A monitor's stop event: setting it also wakes the source's blocked read and the
    backoff wait. `nudge` is that wait's own event, also set by a session-up notice."""

    def __init__(self) -> None:
        super().__init__()
        self.wake: Callable[[], None] | None = None
        self.nudge = threading.Event()

    def set(self) -> None:
        super().set()
        self.nudge.set()
        wake = self.wake
        if wake is not None:
            try:
                wake()
            except Exception:  # the loop still sees the event within CHECK_EVERY
                log.exception("could not wake a monitor's read")


def router_trouble(exc: RouterError) -> str:
    """The reason an `offline` event gives for a router we could not use, in its words."""
    if isinstance(exc, LoginError):
        return f"router refused the login: {exc}"
    return f"router unreachable: {exc}"


def _quietly(action: Callable[[], object]) -> None:
    """Best effort cleanup: one failing step must not skip the others."""
    try:
        action()
    except Exception:
        log.exception("cleanup step failed")
