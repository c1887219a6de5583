"""The monitors' session-row writes, off their sample loops: one thread per worker process.

A monitor reports what it is doing (offline, reconnecting, running again) in its
monitor_sessions row. Written from the loop itself, a slow or stalled PostgreSQL
would stop the samples and, once the loop stops calling progress(), lose the lease.
So a loop only records the write here and goes on; this thread applies it.

Writes are kept per attempt of a session and only the newest one counts (a row shows the current
state, not a history). Each is the same conditional UPDATE the loop would have run
(tasks.sessions: on `attempt`, so a late write never touches a newer attempt's row).
When PostgreSQL fails, the writes stay queued and are retried with a capped backoff:
the rows catch up when PostgreSQL is back. A write queued in a process that dies is
lost; the next change of that monitor writes its row again, and a stop is finished by
the reconciler from its stop key (tasks.reconciler).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from common.backoff import Backoff
from models import ActualState
from tasks import session_reports, sessions
from tasks.report import SessionReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Write:
    what: str  # for logs
    apply: Callable[[], object]


class StateWriter:
    """Thread-safe; started on the first write; `stop()` ends the thread."""

    def __init__(self, retry: Backoff | None = None) -> None:
        self._retry = retry or Backoff(initial=0.5, maximum=10.0)
        self._pending: dict[str, _Write] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        # Writes applied and retries, for tasks.metrics (read at scrape time).
        self.written = 0
        self.retried = 0

    # -- callers (monitor loops) ----------------------------------------------------------

    def set_state(self, session_id: object, attempt: int, state: ActualState) -> None:
        """Record what the attempt is doing (tasks.sessions.set_state), soon."""
        self._put(
            f"{session_id}:{attempt}",
            _Write(f"{state} (attempt {attempt})", lambda: sessions.set_state(session_id, attempt, state)),
        )

    def close(
        self, session_id: object, reason: str, attempt: int | None, report: SessionReport | None = None
    ) -> None:
        """Close the row (tasks.sessions.close), soon; for a run whose own close failed.
        With `report`, the session's report is written with it (tasks.session_reports)."""

        def apply() -> object:
            if report is None:
                return sessions.close(session_id, reason, attempt=attempt)
            return session_reports.close_with_report(session_id, reason, report, attempt=attempt)

        self._put(f"{session_id}:{attempt}", _Write(f"close ({reason})", apply))

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _put(self, key: str, write: _Write) -> None:
        with self._lock:
            self._pending[key] = write
            if self._thread is None and not self._closing.is_set():
                self._thread = threading.Thread(target=self._run, name="state-writer", daemon=True)
                self._thread.start()
        self._wake.set()

    # -- the thread ---------------------------------------------------------------------

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread after one last attempt at what is queued."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        left = self.pending()
        if left:
            log.warning("state writer closed with %d session writes not applied", left)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            failed = self._apply_all()
            if self._closing.is_set():
                return
            if failed:
                # Wait for the backoff; a new write does not cut it short (it would fail
                # the same way), stop() does.
                self._closing.wait(self._retry.next_delay())
                self._wake.set()
            else:
                self._retry.reset()

    def _apply_all(self) -> bool:
        """Apply every queued write once; True if PostgreSQL refused one (retry later)."""
        with self._lock:
            batch = list(self._pending.items())
        for key, write in batch:
            try:
                write.apply()
            except (SQLAlchemyError, OSError) as exc:
                self.retried += 1
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "session rows cannot be written (%s); %d writes wait and are retried",
                        type(exc).__name__,
                        len(batch),
                    )
                return True
            except Exception:
                log.exception("session write %s of %s failed; dropped", write.what, key)
            with self._lock:
                if self._pending.get(key) is write:
                    del self._pending[key]
            self.written += 1
        if self._failing:
            self._failing = False
            log.info("session rows are written again")
        return False
