"""The monitor task: one customer's traffic, once per interval, into the streams.

Lifecycle of one attempt (token f"{session_id}:{attempt}"):
1. Check the session row still wants *this* attempt (a late or superseded
   message does nothing but give back what its token holds).
2. Take the reservation made by start/reconciler: `acquire` with the same token
   refreshes it and returns its fence; register with the process's lease keeper
   (bulk renewals, bulk stop-key polling).
3. Subscribe through the process-wide router hub and loop: every sample is
   enriched (tasks.message) and fenced-published; router or interface trouble
   gives one status event per change and exponential backoff with jitter, the
   slot kept; a fenced-out publish or a lost renewal stops production at once.
4. Stop cooperatively within a second on: the stop key (keeper), a revoke (the
   worker's in-process revoked set), the worker's shutdown, the max duration.
5. `finally`: cancel the stream, close the row with its reason, release the
   lease and slot, publish `stopped` — except on worker shutdown, which is a
   handover: the row stays desired=running (actual=pending), the lease is
   released at once, and the reconciler starts a new attempt on another worker
   within one reconcile interval (no need to wait out the TTL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import redis
from celery.signals import worker_shutdown, worker_shutting_down
from celery.worker import state as worker_state

from models import ActualState, DesiredState, MonitorSession
from models.resolution import ResolutionError
from routeros import RouterError
from settings import get_settings
from tasks import runtime, sessions
from tasks.app import app, shutting_down
from tasks.backoff import Backoff
from tasks.hub import RouterHandle, close_hub, get_hub
from tasks.leases import LEASE_LOST, LeaseHandle
from tasks.message import MessageError, status_entry, traffic_from_row
from tasks.sources import InterfaceSource, QueueSource, Reading, Source, all_zero
from tasks.targets import MonitorPlan, plan_for_session

log = logging.getLogger(__name__)

MONITOR_TASK = "tasks.monitor.monitor"

WORKER_SHUTDOWN = "worker-shutdown"
REVOKED = "revoked"
MAX_DURATION = "max-duration"

# Longest wait for a sample before the loop looks around again. Stops do not wait for
# it: the lease's stop event (stop key, lease lost, worker shutdown, and revokes via the
# revoke watcher) wakes the source's read at once. Waking every monitor 5 times a second
# instead cost a worker half its CPU at 1,000 monitors (GIL hand-offs), see `make bench`.
CHECK_EVERY = 1.0
# Waits that nothing wakes (the shared router connection logging in): short.
OPEN_WAIT = 0.2
# How often the revoke watcher looks for revoked monitor tasks (Flower's revoke only
# flags the task id in this process).
REVOKE_POLL = 0.2
# Some routers keep streaming zeros for an interface that vanished (facts 3.3,
# UNVERIFIED): after this many all-zero samples in a row, ask whether the interface
# still exists, at most once per PRESENCE_CHECK_EVERY seconds. One short print,
# and only for idle-looking monitors.
ZERO_SAMPLES_BEFORE_CHECK = 3
PRESENCE_CHECK_EVERY = 5.0
PRESENCE_CHECK_TIMEOUT = 0.5


@dataclass
class _Outcome:
    reason: str
    handover: bool = False
    lease_lost: bool = False


# Routed to `monitors` by celeryconfig.task_routes; early ack and no result on purpose.
@app.task(name=MONITOR_TASK, bind=True, acks_late=False, ignore_result=True)
def monitor(self: object, session_id: str, attempt: int, fence: int | None = None) -> str:
    """Run one monitor attempt to its end; the return value is the stop reason (for logs).

    `fence` is the reservation's, shown in Flower; the task takes it again from
    `acquire` (same token, same fence) rather than trusting a queued message.
    """
    task_id = getattr(getattr(self, "request", None), "id", None) or sessions.task_id(session_id, attempt)
    return MonitorRun(str(session_id), int(attempt), task_id).run()


class MonitorRun:
    def __init__(self, session_id: str, attempt: int, task_id: str) -> None:
        self.session_id = session_id
        self.attempt = attempt
        self.task_id = task_id
        self.token = sessions.token(session_id, attempt)
        self.settings = get_settings()
        self.sem = runtime.semaphore()
        # Fenced publishes go through the process's batching thread (one pipeline for
        # whatever all monitors have ready); publish_status stays a plain call.
        self.pub = runtime.batch_publisher()
        self.fence = 0
        self.seq = 0
        self.lease: LeaseHandle | None = None
        self.stop_event: _WakingEvent | None = None
        self.plan: MonitorPlan | None = None
        self.trouble: str | None = None  # current status kind while not producing

    # -- entry ------------------------------------------------------------------------

    def run(self) -> str:
        row = sessions.get(self.session_id)
        if row is None or row.attempt != self.attempt or row.desired_state != DesiredState.RUNNING:
            return self._not_wanted(row)
        try:
            self.plan = plan_for_session(row)
        except ResolutionError as exc:
            # The customer changed under us (deleted, suspended...): a restart would
            # fail the same way, so the session ends with the data layer's message.
            # Anything else (database down) propagates: the reservation then expires
            # and the reconciler retries.
            reason = f"cannot resolve target: {exc}"
            log.warning("monitor %s: %s", self.token, reason)
            sessions.close(self.session_id, reason, attempt=self.attempt)
            self._release_best_effort(row.customer_id, row.router_id)
            return reason
        if not self._take_reservation():
            return LEASE_LOST
        outcome = _Outcome(reason="error")
        handle: RouterHandle | None = None
        source: Source | None = None
        try:
            handle = get_hub().checkout(self.plan.endpoint)
            source = self._make_source(handle)
            assert self.stop_event is not None
            self.stop_event.wake = source.wake
            outcome = self._loop(handle, source)
        except Exception as exc:
            log.exception("monitor %s failed", self.token)
            outcome = _Outcome(reason=f"error: {type(exc).__name__}")
        finally:
            if source is not None:
                _quietly(source.close)
            if handle is not None:
                _quietly(handle.close)
            self._finish(outcome)
        return outcome.reason

    def _not_wanted(self, row: MonitorSession | None) -> str:
        # Stopped before start, or superseded by a newer attempt: give back only
        # what this token still holds; never touch the newer attempt's row.
        if row is not None:
            self._release_best_effort(row.customer_id, row.router_id)
            if row.attempt == self.attempt:
                sessions.close(self.session_id, "stopped before start", attempt=self.attempt)
        return "not-wanted"

    def _release_best_effort(self, customer_id: str, router_id: str) -> None:
        """Give back what this token holds; if Redis is down or overloaded, its TTL does."""
        try:
            self.sem.release(self.token, customer_id, router_id)
        except redis.RedisError as exc:
            log.warning("monitor %s: release failed (the lease TTL frees it): %s", self.token, exc)

    def _take_reservation(self) -> bool:
        plan = self.plan
        assert plan is not None
        try:
            # Same token = refresh of the reservation (same fence); a reservation
            # that expired in the queue is re-taken if the customer is still free.
            self.fence = self.sem.acquire(
                self.token,
                plan.customer_id,
                plan.router_id,
                global_limit=self.settings.max_concurrent_monitors,
                router_limit=plan.router_limit,
                ttl=self.settings.monitor_lease_ttl,
            )
        except Exception as exc:  # CapacityError / AlreadyMonitored / Redis down
            log.warning("monitor %s could not take its reservation: %s", self.token, exc)
            return False
        if not sessions.set_state(
            self.session_id,
            self.attempt,
            ActualState.RUNNING,
            task=self.task_id,
            started=True,
            only_if_wanted=True,
        ):
            # Stopped meanwhile, or the reconciler moved to a newer attempt (then the
            # attempt condition keeps this from touching the newer attempt's row).
            self._release_best_effort(plan.customer_id, plan.router_id)
            sessions.close(self.session_id, "stopped before start", attempt=self.attempt)
            return False
        self.stop_event = _WakingEvent()
        self.lease = runtime.keeper().register(
            self.token,
            plan.customer_id,
            plan.router_id,
            session_id=self.session_id,
            stop_event=self.stop_event,
        )
        _revokes.watch(self.task_id, self.lease)
        self.seq = self._next_seq()
        self._publish_status("started", f"attempt {self.attempt}")
        return True

    # -- the loop -----------------------------------------------------------------------

    def _loop(self, handle: RouterHandle, source: Source) -> _Outcome:
        plan = self.plan
        lease = self.lease
        assert plan is not None and lease is not None
        interval = self.settings.monitor_interval
        stall_after = max(3 * interval, 3.0)
        deadline = time.monotonic() + plan.remaining_seconds
        backoff = Backoff()
        is_open = False
        retry_at = 0.0
        last_life = time.monotonic()  # last sample, or last (re)open
        client_reconnecting = False
        zero_run, next_presence_check = 0, 0.0
        while True:
            lease.progress()
            reason = self._stop_reason(deadline)
            if reason is not None:
                return self._outcome(reason)
            now = time.monotonic()
            if not is_open:
                if now < retry_at:
                    lease.stop_event.wait(min(CHECK_EVERY, retry_at - now))
                    continue
                try:
                    opened = source.open(wait=OPEN_WAIT)
                except RouterError as exc:
                    # A login that failed leaves no client behind; a client that
                    # refuses new commands is closed or failed for good: replace it.
                    handle.invalidate()
                    self._trouble("offline", f"router unreachable: {exc}")
                    retry_at = time.monotonic() + backoff.next_delay()
                    continue
                if not opened:
                    # The shared connection is still logging in; say so if it drags on.
                    if time.monotonic() - last_life > stall_after:
                        self._trouble("offline", "router connection not ready")
                    continue
                is_open, last_life, client_reconnecting = True, time.monotonic(), False
            reading = source.read(timeout=max(0.0, min(CHECK_EVERY, deadline - now)))
            if reading is None:
                if not client_reconnecting and time.monotonic() - last_life > stall_after:
                    # The stream went silent without the connection noticing: re-issue it.
                    self._trouble("reconnecting", f"no samples for {stall_after:g}s")
                    source.close()
                    is_open, retry_at = False, time.monotonic() + backoff.next_delay()
                continue
            if reading.kind == "sample":
                last_life, client_reconnecting = time.monotonic(), False
                zero_run = zero_run + 1 if all_zero(reading.data) else 0
                if (
                    plan.kind == "interface"
                    and zero_run >= ZERO_SAMPLES_BEFORE_CHECK
                    and time.monotonic() >= next_presence_check
                ):
                    next_presence_check = time.monotonic() + PRESENCE_CHECK_EVERY
                    if not self._interface_present(handle):
                        self._trouble("offline", f"interface {plan.interface} is gone")
                        source.close()
                        zero_run = 0
                        is_open, retry_at = False, time.monotonic() + backoff.next_delay()
                        continue
                if self.trouble is not None:
                    self._recovered()  # announced before the first sample it announces
                if self._publish_sample(reading):
                    backoff.reset()
            elif reading.kind == "reconnecting":
                # The client re-dials and re-issues the stream itself: wait for it.
                client_reconnecting = True
                self._trouble("reconnecting", reading.reason)
            elif reading.kind == "resumed":
                client_reconnecting, last_life = False, time.monotonic()
            elif reading.kind == "offline":
                # A poll failed (queue source): back off before polling again.
                self._trouble("offline", reading.reason)
                retry_at = time.monotonic() + backoff.next_delay()
                source.close()
                is_open = False
            else:  # gone / failed: interface or queue missing, or client gave up
                if reading.kind == "failed":
                    handle.invalidate()
                self._trouble("offline", reading.reason)
                source.close()
                is_open, retry_at = False, time.monotonic() + backoff.next_delay()

    def _interface_present(self, handle: RouterHandle) -> bool:
        """Does the monitored interface still exist? Unknown counts as yes (no flapping)."""
        plan = self.plan
        assert plan is not None
        try:
            rows = handle.call(
                "/interface/print",
                queries=(f"?name={plan.interface}",),
                proplist=("name",),
                timeout=PRESENCE_CHECK_TIMEOUT,
            )
        except RouterError:
            return True
        return rows is None or bool(rows)

    def _stop_reason(self, deadline: float) -> str | None:
        lease = self.lease
        assert lease is not None
        if lease.stop_event.is_set():
            return lease.stop_reason or "stop-requested"
        if shutting_down.is_set():
            return WORKER_SHUTDOWN
        if self.task_id in worker_state.revoked:
            return REVOKED
        if time.monotonic() >= deadline:
            return MAX_DURATION
        return None

    def _outcome(self, reason: str) -> _Outcome:
        if reason == LEASE_LOST:
            return _Outcome(reason, lease_lost=True)
        if reason == WORKER_SHUTDOWN:
            return _Outcome(reason, handover=True)
        return _Outcome(reason)

    # -- publishing ----------------------------------------------------------------------

    def _publish_sample(self, reading: Reading) -> bool:
        plan = self.plan
        assert plan is not None and reading.data is not None
        name = reading.data.get("name")
        if plan.kind == "queue" and name and name != plan.meta.interface:
            # A static customer's queue is found by its target address: once the router
            # names it, show the queue's own name, as for hotspot queues.
            plan = self.plan = replace(plan, meta=replace(plan.meta, interface=name))
        try:
            entry = traffic_from_row(
                reading.data, plan.meta, session_id=self.session_id, seq=self.seq, fence=self.fence
            )
        except MessageError as exc:
            log.warning("monitor %s: unusable router row: %s", self.token, exc)
            return False
        return self._publish(entry)

    def _publish_status(self, kind: str, reason: str | None = None) -> bool:
        plan = self.plan
        assert plan is not None
        entry = status_entry(
            kind, plan.meta, session_id=self.session_id, seq=self.seq, fence=self.fence, reason=reason
        )
        return self._publish(entry)

    def _publish(self, entry: dict[str, str]) -> bool:
        lease = self.lease
        assert lease is not None
        try:
            ids = self.pub.publish(entry, token=self.token, fence=self.fence)
        except redis.RedisError as exc:
            # Redis trouble is the keeper's call: it declares the lease lost after the TTL.
            # A timed-out publish may still run when a frozen Redis resumes: its seq is
            # spent either way, so no two entries of a session ever share one.
            log.warning("monitor %s: publish failed: %s", self.token, exc)
            self.seq += 1
            return False
        if ids is None:
            lease.request_stop(LEASE_LOST)  # fenced out: someone else owns the customer now
            return False
        self.seq += 1
        return True

    def _trouble(self, kind: str, reason: str) -> None:
        if self.trouble == kind:
            return
        self.trouble = kind
        log.info("monitor %s: %s (%s)", self.token, kind, reason)
        self._publish_status(kind, reason)
        state = ActualState.OFFLINE if kind == "offline" else ActualState.RECONNECTING
        _quietly(lambda: sessions.set_state(self.session_id, self.attempt, state))

    def _recovered(self) -> None:
        self.trouble = None
        self._publish_status("resumed", "samples flowing again")
        _quietly(lambda: sessions.set_state(self.session_id, self.attempt, ActualState.RUNNING))

    def _next_seq(self) -> int:
        """Continue the session's sequence across attempts (one XREVRANGE)."""
        plan = self.plan
        assert plan is not None
        try:
            from tasks.keys import customer_stream
            from tasks.message import decode_entry

            last = runtime.redis_client().xrevrange(customer_stream(plan.customer_id), count=1)
            if last:
                entry = decode_entry(last[0][0], last[0][1])
                if entry.get("session_id") == self.session_id:
                    return int(entry.get("seq") or 0) + 1
        except (redis.RedisError, MessageError, ValueError):
            pass
        return 0

    def _make_source(self, handle: RouterHandle) -> Source:
        plan = self.plan
        assert plan is not None
        interval = self.settings.monitor_interval
        if plan.kind == "interface":
            return InterfaceSource(handle, plan.interface, interval)
        return QueueSource(handle, plan.queue_query, interval)

    # -- the end ---------------------------------------------------------------------------

    def _finish(self, outcome: _Outcome) -> None:
        plan, lease = self.plan, self.lease
        assert plan is not None and lease is not None
        keeper = runtime.keeper()
        try:
            if outcome.lease_lost:
                # Another attempt may own the customer already: touch nothing of theirs.
                log.warning("monitor %s: lease lost, stopped producing", self.token)
            elif outcome.handover:
                self._publish_status("reconnecting", "worker shutting down: handing over")
                _quietly(lambda: sessions.set_state(self.session_id, self.attempt, ActualState.PENDING))
            else:
                # Close the row before giving the slot back, or the reconciler could
                # see desired=running without a lease and restart it.
                reason = outcome.reason
                try:
                    reason = sessions.close(self.session_id, reason, attempt=self.attempt) or reason
                except Exception:
                    log.exception("monitor %s: could not close its session row", self.token)
                if not self._publish_status("stopped", reason):
                    _quietly(
                        lambda: self.pub.publish_status(
                            status_entry(
                                "stopped",
                                plan.meta,
                                session_id=self.session_id,
                                seq=self.seq,
                                fence=self.fence,
                                reason=reason,
                            )
                        )
                    )
        finally:
            _revokes.forget(self.task_id)
            keeper.unregister(lease)
            _quietly(lambda: self.sem.release(self.token, plan.customer_id, plan.router_id))
            log.info("monitor %s ended: %s", self.token, outcome.reason)


class _WakingEvent(threading.Event):
    """A monitor's stop event: setting it also wakes the source's blocked read."""

    def __init__(self) -> None:
        super().__init__()
        self.wake: Callable[[], None] | None = None

    def set(self) -> None:
        super().set()
        wake = self.wake
        if wake is not None:
            try:
                wake()
            except Exception:  # the loop still sees the event within CHECK_EVERY
                log.exception("could not wake a monitor's read")


class _RevokeWatcher:
    """One thread per worker process: a revoked monitor task gets its stop event set
    (Celery only flags revoked ids; the loop no longer polls often enough to notice)."""

    def __init__(self) -> None:
        self._watched: dict[str, LeaseHandle] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, task_id: str, handle: LeaseHandle) -> None:
        with self._lock:
            self._watched[task_id] = handle
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="revoke-watcher", daemon=True)
                self._thread.start()

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._watched.pop(task_id, None)

    def _run(self) -> None:
        while True:
            time.sleep(REVOKE_POLL)
            try:
                with self._lock:
                    watched = list(self._watched.items())
                revoked = worker_state.revoked
                for task_id, handle in watched:
                    if not handle.stopped and task_id in revoked:
                        handle.request_stop(REVOKED)
            except Exception:  # keep watching
                log.exception("revoke watcher round failed")


_revokes = _RevokeWatcher()


def _quietly(action: object) -> None:
    """Best effort cleanup: one failing step must not skip the others."""
    try:
        action()  # type: ignore[operator]
    except Exception:
        log.exception("cleanup step failed")


@worker_shutdown.connect
def _close_router_connections(**_: object) -> None:
    # The monitors have returned by now: log out of the routers cleanly (a FIN
    # frees the router's API session at once instead of at its idle timeout).
    close_hub()
    keeper = runtime.existing_keeper()
    if keeper is not None:
        keeper.close()
    batch = runtime.existing_batch_publisher()
    if batch is not None:
        batch.close()


@worker_shutting_down.connect
def _stop_all_for_shutdown(**_: object) -> None:
    # Every loop also sees `shutting_down` on its next check; setting the lease
    # events wakes the ones waiting out a backoff, with the handover reason.
    keeper = runtime.existing_keeper()
    if keeper is not None:
        keeper.stop_all(WORKER_SHUTDOWN)
