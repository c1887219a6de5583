"""The reconciler: makes Redis (leases, slots) agree with PostgreSQL (what should run).

Runs from beat every RECONCILE_INTERVAL on the `default` queue. Each pass:
1. frees slots whose lease expired (a SIGKILLed worker's monitors);
2. stops open sessions past their max duration;
3. restarts open sessions with no live owner: the next attempt is reserved first
   (so the cap and single flight hold: never two producers, never above the cap,
   also right after Redis was flushed or restarted), then the attempt number is
   claimed in SQL (optimistic), then it is launched. A session that has a stop key
   is closed instead (a stop that reached Redis while PostgreSQL was away). While
   Redis is out of memory (no lease, no enqueue) restarts back off;
4. finishes sessions whose stop was requested but whose monitor is gone, and
   re-sets the stop key of those whose monitor still lives (a flush erased it);
5. asks leases whose session is no longer open to stop.

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

from models import DesiredState, MonitorSession
from models.resolution import ResolutionError
from routeros.backoff import Backoff
from settings import as_text, get_settings
from tasks import keys, lifecycle, runtime, sessions
from tasks.app import app
from tasks.lifecycle import MAX_DURATION, SESSION_CLOSED, Token
from tasks.message import CustomerMeta
from tasks.semaphore import AlreadyMonitored, CapacityError, Holder, StorageFull
from tasks.targets import meta_for, remaining_seconds, resolve_customer

log = logging.getLogger(__name__)

RECONCILE_TASK = "tasks.reconciler.reconcile"

# Rows touched this recently are left alone: start() inserts the row a moment
# before it reserves, and a handover marks the row just before it releases.
GRACE_SECONDS = 1.0


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


@app.task(name=RECONCILE_TASK, ignore_result=True)  # type: ignore[untyped-decorator]  # celery is untyped
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
            "storage_waits": 0,
        }

    def run(self) -> dict[str, int]:
        self.summary["freed"] = len(self.sem.free_expired())
        holders = {h.token: h for h in self.sem.holders()}
        self.db_now = sessions.db_now()
        open_rows = sessions.open_sessions()
        open_ids = {str(r.id) for r in open_rows}
        for row in open_rows:
            try:
                self._reconcile_open(row, holders)
            except (redis.RedisError, ResolutionError, OSError) as exc:
                log.warning("reconcile of session %s failed: %s", row.id, exc)
        for row in sessions.winding_down():
            self._reconcile_stopping(row, holders)
        for text in holders:
            try:
                session_id = Token.parse(text).session_id
            except ValueError:
                continue  # not a monitor's lease
            if session_id not in open_ids:
                # A lease without an open session: its monitor must go.
                lifecycle.request_stop(self.redis, session_id, SESSION_CLOSED, self.settings)
                self.summary["stop_keys"] += 1
        try:
            self.redis.set(keys.RECONCILER_LAST_RUN, self.sem.now_ms())
        except redis.OutOfMemoryError:
            # /ready then reports the reconciler as stale, which is what it is.
            log.warning("reconciler: %s: last-run time not recorded", lifecycle.REDIS_OUT_OF_MEMORY)
        return self.summary

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
            if sessions.close(row.id, reason, attempt=row.attempt):
                lifecycle.publish_stopped(self.publisher, row, reason)
            self.summary["closed"] += 1
            return
        self._restart(row, target.max_monitors, meta_for(target))

    def _restart(self, row: MonitorSession, router_limit: int | None, meta: CustomerMeta) -> None:
        if redis_full.paused():
            self.summary["storage_waits"] += 1
            return
        token = Token.of(row).next()
        try:
            fence = self.sem.acquire(
                str(token),
                row.customer_id,
                row.router_id,
                global_limit=self.settings.max_concurrent_monitors,
                router_limit=router_limit,
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
        if sessions.next_attempt(row.id, row.attempt, token.task_id) is None:
            # Either another pass claimed this attempt (and may be using this very
            # token: leave it), or the session was stopped meanwhile (give it back).
            current = sessions.get(row.id)
            if current is None or current.desired_state != DesiredState.RUNNING:
                self.sem.release(str(token), row.customer_id, row.router_id)
            return
        try:
            lifecycle.launch(token, fence, meta, enqueued_ms=self.sem.now_ms())
        except Exception as exc:
            # The attempt is claimed but not running: give the slot back; the next
            # pass retries with another attempt once this row is out of its grace.
            self.sem.release(str(token), row.customer_id, row.router_id)
            if lifecycle.is_redis_out_of_memory(exc):
                redis_full.refused(f"{lifecycle.REDIS_OUT_OF_MEMORY} (enqueue refused)")
                self.summary["storage_waits"] += 1
                return
            raise
        self.summary["restarted"] += 1
        log.info("restarted session %s as attempt %d", row.id, token.attempt)

    def _finish_stop(self, row: MonitorSession, reason: str) -> None:
        sessions.request_stop(row.id, reason)
        if sessions.close(row.id, reason, attempt=row.attempt):
            lifecycle.publish_stopped(self.publisher, row, reason)
        self.summary["closed"] += 1
        log.info("session %s: finished the stop its key asked for (%s)", row.id, reason)

    def _expire(self, row: MonitorSession, live: bool) -> None:
        sessions.request_stop(row.id, MAX_DURATION)
        lifecycle.request_stop(self.redis, row.id, MAX_DURATION, self.settings)
        if not live and sessions.close(row.id, MAX_DURATION):
            lifecycle.publish_stopped(self.publisher, row, MAX_DURATION)
        self.summary["expired"] += 1

    # -- sessions asked to stop ------------------------------------------------------------

    def _reconcile_stopping(self, row: MonitorSession, holders: dict[str, Holder]) -> None:
        reason = row.stop_reason or "stop requested"
        if str(Token.of(row)) in holders:
            lifecycle.request_stop(self.redis, row.id, reason, self.settings)
            return
        if recently_touched(row, self.db_now):
            return
        # Its monitor is gone (killed, or never started): nobody else will finish it.
        if sessions.close(row.id, reason, attempt=row.attempt):
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
