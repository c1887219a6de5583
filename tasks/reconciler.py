"""The reconciler: makes Redis (leases, slots) agree with PostgreSQL (what should run).

Runs from beat every RECONCILE_INTERVAL on the `default` queue. Each pass:
1. frees slots whose lease expired (a SIGKILLed worker's monitors);
2. stops open sessions past their max duration;
3. restarts open sessions with no live owner: a new attempt goes through
   `acquire` first (so the cap and single flight hold: never two producers,
   never above the cap, also right after Redis was flushed or restarted), then
   the attempt number is claimed in SQL (optimistic), then it is enqueued;
4. finishes sessions whose stop was requested but whose monitor is gone, and
   re-sets the stop key of those whose monitor still lives (a flush erased it);
5. asks leases whose session is no longer open to stop.

Every step is idempotent and safe to run twice at once: a second reconciler's
acquire for the same new token is a refresh, and its SQL claim fails, so it
enqueues nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from models import MonitorSession
from models.resolution import ResolutionError
from settings import get_settings
from tasks import runtime, sessions
from tasks.app import app
from tasks.leases import request_stop as set_stop_key
from tasks.semaphore import AlreadyMonitored, CapacityError
from tasks.targets import remaining_seconds, resolve_customer

log = logging.getLogger(__name__)

RECONCILE_TASK = "tasks.reconciler.reconcile"

# Rows touched this recently are left alone: start() inserts the row a moment
# before it acquires, and a handover marks the row just before it releases.
GRACE_SECONDS = 1.0


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> dict[str, int]:
    """One pass; returns counters (for the worker log)."""
    summary = Reconciler().run()
    if any(summary.values()):
        log.info("reconcile: %s", summary)
    return summary


class Reconciler:
    def __init__(self) -> None:
        self.settings = get_settings()
        self.sem = runtime.semaphore()
        self.redis = runtime.redis_client()
        self.summary = {
            "freed": 0,
            "restarted": 0,
            "expired": 0,
            "closed": 0,
            "stop_keys": 0,
            "capacity_waits": 0,
        }

    def run(self) -> dict[str, int]:
        self.summary["freed"] = len(self.sem.free_expired())
        holders = {h.token: h for h in self.sem.holders()}
        open_rows = sessions.open_sessions()
        open_ids = {str(r.id) for r in open_rows}
        for row in open_rows:
            try:
                self._reconcile_open(row, holders)
            except (redis.RedisError, ResolutionError, OSError) as exc:
                log.warning("reconcile of session %s failed: %s", row.id, exc)
        for row in sessions.winding_down():
            self._reconcile_stopping(row, holders)
        for token in holders:
            session_id = token.rsplit(":", 1)[0]
            if session_id not in open_ids:
                # A lease without an open session: its monitor must go.
                set_stop_key(self.redis, session_id, "session closed", ttl=self._stop_ttl())
                self.summary["stop_keys"] += 1
        return self.summary

    # -- open sessions ------------------------------------------------------------------

    def _reconcile_open(self, row: MonitorSession, holders: dict[str, Any]) -> None:
        token = sessions.token(row.id, row.attempt)
        live = token in holders
        if remaining_seconds(row) <= 0:
            self._expire(row, live)
            return
        if live or recently_touched(row):
            return
        owner = self.sem.owner_of(row.customer_id)
        if owner is not None:
            # Someone still owns the customer (an older session winding down): wait.
            return
        try:
            target = resolve_customer(row.customer_id)
        except ResolutionError as exc:
            sessions.close(row.id, f"cannot resolve target: {exc}", attempt=row.attempt)
            self.summary["closed"] += 1
            return
        self._restart(row, target.max_monitors)

    def _restart(self, row: MonitorSession, router_limit: int | None) -> None:
        new_attempt = row.attempt + 1
        token = sessions.token(row.id, new_attempt)
        try:
            fence = self.sem.acquire(
                token,
                row.customer_id,
                row.router_id,
                global_limit=self.settings.max_concurrent_monitors,
                router_limit=router_limit,
                ttl=self.settings.monitor_lease_ttl,
            )
        except CapacityError:
            self.summary["capacity_waits"] += 1
            return
        except AlreadyMonitored:
            return
        if sessions.next_attempt(row.id, row.attempt) is None:
            # Either another pass claimed this attempt (and may be using this very
            # token: leave it), or the session was stopped meanwhile (give it back).
            current = sessions.get(row.id)
            if current is None or current.desired_state != "running":
                self.sem.release(token, row.customer_id, row.router_id)
            return
        from tasks.monitor import monitor

        try:
            monitor.apply_async(
                args=[str(row.id), new_attempt, fence],
                task_id=sessions.task_id(row.id, new_attempt),
                queue="monitors",
                expires=self.settings.message_expiry,
            )
        except Exception:
            # The attempt is claimed but not running: give the slot back; the next
            # pass retries with another attempt once this row is out of its grace.
            self.sem.release(token, row.customer_id, row.router_id)
            raise
        self.summary["restarted"] += 1
        log.info("restarted session %s as attempt %d", row.id, new_attempt)

    def _expire(self, row: MonitorSession, live: bool) -> None:
        reason = "max-duration"
        sessions.request_stop(row.id, reason)
        set_stop_key(self.redis, row.id, reason, ttl=self._stop_ttl())
        if not live and sessions.close(row.id, reason):
            self._publish_stopped(row, reason)
        self.summary["expired"] += 1

    # -- sessions asked to stop ------------------------------------------------------------

    def _reconcile_stopping(self, row: MonitorSession, holders: dict[str, Any]) -> None:
        token = sessions.token(row.id, row.attempt)
        if token in holders:
            set_stop_key(self.redis, row.id, row.stop_reason or "stop requested", ttl=self._stop_ttl())
            return
        if recently_touched(row):
            return
        # Its monitor is gone (killed, or never started): nobody else will finish it.
        if sessions.close(row.id, row.stop_reason or "stopped", attempt=row.attempt):
            self.summary["closed"] += 1
            self._publish_stopped(row, row.stop_reason or "stopped")

    def _publish_stopped(self, row: MonitorSession, reason: str) -> None:
        from tasks.service import publish_stopped

        publish_stopped(row, reason)

    def _stop_ttl(self) -> float:
        return max(60.0, self.settings.monitor_lease_ttl * 4)


def recently_touched(row: MonitorSession) -> bool:
    updated = row.updated_at
    if updated is None:
        return False
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return datetime.now(UTC) - updated < timedelta(seconds=GRACE_SECONDS)
