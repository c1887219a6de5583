"""The monitors' worker pool: Celery's threads pool, with terminate understood.

Monitors share a process-wide router connection per router, so they run as threads of
one process. Celery's threads pool cannot kill a thread: `revoke(terminate=True)` (what
Flower's revoke button can send) reaches `terminate_job`, whose default raises
NotImplementedError and the worker logs an ERROR traceback, although the monitor stops
cleanly anyway: the revoke also flags its task id, which the lease keeper sees within
a quarter second (docs/architecture.md, Celery on Redis). This pool says so instead.

celeryconfig sets `worker_pool` to this class, so workers need no `-P` option.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.concurrency.thread import TaskPool

log = logging.getLogger(__name__)


class ThreadPool(TaskPool):  # type: ignore[misc]  # celery is untyped
    def terminate_job(self, pid: Any, signal: Any = None) -> None:
        log.info(
            "terminate requested: monitors stop cooperatively (the revoke flag is seen within 0.25 s); "
            "no thread is killed"
        )
