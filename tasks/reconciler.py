"""The reconciler: makes Redis (leases, slots) agree with PostgreSQL (what should run).

Runs from beat every RECONCILE_INTERVAL on the `default` queue. Each pass:
1. frees slots whose lease expired (a SIGKILLed worker's monitors);
2. stops open sessions whose customer is no longer active (`customer suspended`,
   `customer inactive`...), and those past their max duration;
3. restarts open sessions with no live owner: the next attempt is reserved first
   (so the cap and single flight hold: never two producers, never above the cap,
   also right after Redis was flushed or restarted), then the attempt number is
   claimed in SQL (optimistic), then it is launched. The customer is resolved
   afresh, so a changed PPPoE username or router is what the new attempt watches.
   A session that has a stop key is closed instead (a stop that reached Redis while
   PostgreSQL was away). While Redis is out of memory (no lease, no enqueue)
   restarts back off;
4. finishes sessions whose stop was requested but whose monitor is gone, and
   re-sets the stop key of those whose monitor still lives (a flush erased it);
5. asks leases whose session is no longer open to stop: `customer deleted` when
   the customer is gone (deleting a customer deletes its session rows), else
   `session closed`;
6. keeps one router watch per router (tasks/watch_lifecycle.py): launches a watch
   for every router without a live one, stops those of routers that vanished; then
   evaluates the watch_offline alert rules over the routers' views (tasks/watch_offline.py).

Every step is idempotent and safe to run twice at once: a second reconciler's
reservation of the same new token is a refresh, and its SQL claim fails, so it
launches nothing. Passes are also gated in Redis (server clock): a backlog of
reconcile messages (a control worker that was down) runs one pass, not hundreds.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import redis

from common.backoff import Backoff
from common.text import as_text
from models import ActualState, CustomerStatus, DesiredState, MonitorSession
from models.resolution import MonitorTarget, ResolutionError
from settings import get_settings
from tasks import keys, lifecycle, runtime, session_reports, sessions, watch_lifecycle, watch_offline
from tasks.app import app
from tasks.lifecycle import MAX_DURATION, SESSION_CLOSED, Token
from tasks.semaphore import AlreadyMonitored, CapacityError, Holder, StorageFull
from tasks.targets import remaining_seconds, resolve_customer

log = logging.getLogger(__name__)

RECONCILE_TASK = "tasks.reconciler.reconcile"

# Rows touched this recently are left alone: start() inserts the row a moment
# before it reserves, and a handover marks the row just before it releases.
GRACE_SECONDS = 1.0
# The stop reason of a lease whose customer row is gone.
CUSTOMER_DELETED = "customer deleted"


class RedisFullBackoff:
    """While Redis is out of memory, restarts wait, longer after each refusal.

    A restart needs a lease (refused, tasks.semaphore.StorageFull) and an enqueue
    (refused by Redis itself), so retrying every pass would only spin and log. One per
    process: passes run on the control worker's threads. A success starts over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backoff: Backoff | None = None
        self._until = 0.0

    def paused(self) -> bool:
        with self._lock:
            return time.monotonic() < self._until

    def refused(self, why: object) -> None:
        with self._lock:
            if self._backoff is None:
                interval = get_settings().reconcile_interval
                self._backoff = Backoff(initial=interval, maximum=max(60.0, 12 * interval))
            delay = self._backoff.next_delay()
            self._until = time.monotonic() + delay
        log.warning("reconciler: %s; restarts back off for %.1fs", why, delay)

    def cleared(self) -> None:
        with self._lock:
            was_paused, self._backoff, self._until = self._backoff is not None, None, 0.0
        if was_paused:
            log.info("reconciler: redis accepts new leases again; restarts resume")


redis_full = RedisFullBackoff()


# send_events=False: a pass every few seconds would push the monitors off Flower's
# first page (its runs are in the control worker's log and in RECONCILER_LAST_RUN).
@app.task(name=RECONCILE_TASK, ignore_result=True, send_events=False)  # type: ignore[untyped-decorator]  # celery is untyped
def reconcile() -> dict[str, int]:
    """One pass (unless another ran within half an interval); returns counters for the log."""
    try:
        if not _gate_open():
            return {}
    except redis.OutOfMemoryError:
        # Not even the gate can be written: nothing this pass could start would run.
        if not redis_full.paused():
            redis_full.refused(lifecycle.REDIS_OUT_OF_MEMORY)
        return {}
    summary = Reconciler().run()
    if any(summary.values()):
        log.info("reconcile: %s", summary)
    return summary


def _gate_open() -> bool:
    client = runtime.current().redis
    gap_ms = max(1, int(get_settings().reconcile_interval * 500))
    return bool(client.set(keys.RECONCILER_GATE, "1", nx=True, px=gap_ms))


class Reconciler:
    def __init__(self) -> None:
        self.settings = get_settings()
        rt = runtime.current()
        self.sem = rt.semaphore
        self.redis = rt.redis
        self.publisher = rt.publisher
        self.summary = {
            "freed": 0,
            "restarted": 0,
            "expired": 0,
            "closed": 0,
            "stop_keys": 0,
            "capacity_waits": 0,
            "customer_stops": 0,
            "storage_waits": 0,
        }

    def run(self) -> dict[str, int]:
        self.summary["freed"] = len(self.sem.free_expired())
        holders = {h.token: h for h in self.sem.holders()}
        self.db_now = sessions.db_now()
        open_rows = sessions.open_sessions_with_status()
        open_ids = {str(r.id) for r, _ in open_rows}
        for row, status in open_rows:
            try:
                if status != CustomerStatus.ACTIVE:
                    self._customer_not_active(row, f"customer {status}", holders)
                else:
                    self._reconcile_open(row, holders)
            except (redis.RedisError, ResolutionError, OSError) as exc:
                log.warning("reconcile of session %s failed: %s", row.id, exc)
        for row in sessions.winding_down():
            self._reconcile_stopping(row, holders)
        orphans: dict[str, Holder] = {}
        for text, holder in holders.items():
            try:
                session_id = Token.parse(text).session_id
            except ValueError:
                continue  # not a monitor's lease
            if session_id not in open_ids:
                orphans[session_id] = holder
        if orphans:
            existing = sessions.existing_customers(h.customer_id for h in orphans.values() if h.customer_id)
            for session_id, holder in orphans.items():
                # A lease without an open session: its monitor must go. A monitor that
                # runs sees the key within a keeper poll, publishes `stopped` with it
                # and frees its slot; a reservation nobody claimed expires with its TTL.
                gone = holder.customer_id is not None and holder.customer_id not in existing
                reason = CUSTOMER_DELETED if gone else SESSION_CLOSED
                lifecycle.request_stop(self.redis, session_id, reason, self.settings)
                self.summary["stop_keys"] += 1
        self._watches()
        try:
            self.redis.set(keys.RECONCILER_LAST_RUN, self.sem.now_ms())
        except redis.OutOfMemoryError:
            # /ready then reports the reconciler as stale, which is what it is.
            log.warning("reconciler: %s: last-run time not recorded", lifecycle.REDIS_OUT_OF_MEMORY)
        return self.summary

    def _watches(self) -> None:
        """One router watch per router; a failure here costs the monitors nothing."""
        try:
            routers: dict[str, str] = {}
            if self.settings.router_watch:
                with sessions.db() as s:
                    routers = watch_lifecycle.known_routers(s)
            self.summary.update(watch_lifecycle.reconcile_watches(self.redis, routers, self.settings))
        except Exception as exc:
            log.warning("reconcile of the router watches failed: %s", exc)
            return
        try:
            self.summary["watch_alerts"] = watch_offline.evaluate(
                self.redis, routers, self.sem.now_ms(), self.settings
            )
        except Exception as exc:
            log.warning("watch_offline alerts not evaluated: %s", exc)

    # -- open sessions ------------------------------------------------------------------

    def _reconcile_open(self, row: MonitorSession, holders: dict[str, Holder]) -> None:
        live = str(Token.of(row)) in holders
        if remaining_seconds(row, self.db_now) <= 0:
            self._expire(row, live)
            return
        if live or recently_touched(row, self.db_now):
            return
        if self.sem.owner_of(row.customer_id) is not None:
            # Someone still owns the customer (an older session winding down): wait.
            return
        stop = self.redis.get(keys.session_stop(row.id))
        if stop is not None:
            # A stop that reached Redis but not this row (PostgreSQL was away): finish it
            # instead of bringing the monitor back.
            self._finish_stop(row, as_text(stop) or lifecycle.STOP_REQUESTED)
            return
        try:
            target = resolve_customer(row.customer_id)
        except ResolutionError as exc:
            reason = f"cannot resolve target: {exc}"
            if self._close(row, reason, attempt=row.attempt):
                lifecycle.publish_stopped(self.publisher, row, reason)
            self.summary["closed"] += 1
            return
        self._restart(row, target)

    def _customer_not_active(self, row: MonitorSession, reason: str, holders: dict[str, Holder]) -> None:
        """The customer was suspended (or otherwise deactivated) while monitored: the
        session stops with that reason, whatever state its monitor is in."""
        if not sessions.request_stop(row.id, reason):
            return  # stopped meanwhile
        self.summary["customer_stops"] += 1
        log.info("session %s: %s, stopping its monitor", row.id, reason)
        lifecycle.request_stop(self.redis, row.id, reason, self.settings)
        queued = row.actual_state in (ActualState.PENDING, ActualState.STARTING)
        if str(Token.of(row)) in holders and not queued:
            return  # its monitor sees the stop key within a keeper poll and ends itself
        # Not started yet (a reservation in the queue), or its monitor is gone: finish
        # it here, as service.stop does; a run that picks the message up later finds
        # the session stopped and ends without a sample.
        self.sem.release(str(Token.of(row)), row.customer_id, row.router_id)
        if self._close(row, reason, attempt=row.attempt):
            lifecycle.publish_stopped(self.publisher, row, reason)
            self.summary["closed"] += 1

    def _restart(self, row: MonitorSession, target: MonitorTarget) -> None:
        if redis_full.paused():
            self.summary["storage_waits"] += 1
            return
        token = Token.of(row).next()
        # Where the customer points now: a router changed since the last attempt is
        # where the new one runs and counts.
        router_id = target.router_id
        try:
            fence = self.sem.acquire(
                str(token),
                row.customer_id,
                router_id,
                global_limit=self.settings.max_concurrent_monitors,
                router_limit=target.max_monitors,
                ttl=self.settings.monitor_lease_ttl,
            )
        except StorageFull as exc:
            # Before anything is written in SQL: the session keeps its attempt number.
            redis_full.refused(exc)
            self.summary["storage_waits"] += 1
            return
        except CapacityError:
            self.summary["capacity_waits"] += 1
            return
        except AlreadyMonitored:
            return
        redis_full.cleared()
        changed = router_id if router_id != row.router_id else None
        if sessions.next_attempt(row.id, row.attempt, token.task_id, router_id=changed) is None:
            # Either another pass claimed this attempt (and may be using this very
            # token: leave it), or the session was stopped meanwhile (give it back).
            current = sessions.get(row.id)
            if current is None or current.desired_state != DesiredState.RUNNING:
                self.sem.release(str(token), row.customer_id, router_id)
            return
        try:
            lifecycle.launch(token, fence, target, enqueued_ms=self.sem.now_ms())
        except Exception as exc:
            # The attempt is claimed but not running: give the slot back; the next
            # pass retries with another attempt once this row is out of its grace.
            self.sem.release(str(token), row.customer_id, router_id)
            if lifecycle.is_redis_out_of_memory(exc):
                redis_full.refused(f"{lifecycle.REDIS_OUT_OF_MEMORY} (enqueue refused)")
                self.summary["storage_waits"] += 1
                return
            raise
        self.summary["restarted"] += 1
        log.info("restarted session %s as attempt %d", row.id, token.attempt)

    def _finish_stop(self, row: MonitorSession, reason: str) -> None:
        sessions.request_stop(row.id, reason)
        if self._close(row, reason, attempt=row.attempt):
            lifecycle.publish_stopped(self.publisher, row, reason)
        self.summary["closed"] += 1
        log.info("session %s: finished the stop its key asked for (%s)", row.id, reason)

    def _expire(self, row: MonitorSession, live: bool) -> None:
        sessions.request_stop(row.id, MAX_DURATION)
        lifecycle.request_stop(self.redis, row.id, MAX_DURATION, self.settings)
        if not live and self._close(row, MAX_DURATION):
            lifecycle.publish_stopped(self.publisher, row, MAX_DURATION)
        self.summary["expired"] += 1

    def _close(self, row: MonitorSession, reason: str, attempt: int | None = None) -> str | None:
        """Close a session whose monitor is gone, with its report from the retained stream."""
        return session_reports.close_from_stream(
            self.redis, row, reason, attempt=attempt, settings=self.settings
        )

    # -- sessions asked to stop ------------------------------------------------------------

    def _reconcile_stopping(self, row: MonitorSession, holders: dict[str, Holder]) -> None:
        reason = row.stop_reason or "stop requested"
        if str(Token.of(row)) in holders:
            lifecycle.request_stop(self.redis, row.id, reason, self.settings)
            return
        if recently_touched(row, self.db_now):
            return
        # Its monitor is gone (killed, or never started): nobody else will finish it.
        if self._close(row, reason, attempt=row.attempt):
            self.summary["closed"] += 1
            lifecycle.publish_stopped(self.publisher, row, reason)


def recently_touched(row: MonitorSession, db_now: datetime) -> bool:
    """Touched within the grace period, both times on the database's clock."""
    updated = row.updated_at
    if updated is None:
        return False
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return db_now - updated < timedelta(seconds=GRACE_SECONDS)
