"""The worker process's lifecycle: what happens when a Celery worker shuts down.

Every worker signal handler of the engine lives here (app.py includes this module,
so every worker imports it at start).
"""

from __future__ import annotations

import threading

from celery.signals import worker_init, worker_shutdown, worker_shutting_down

from settings import get_settings
from tasks import metrics, runtime
from tasks.hub import close_hub
from tasks.lifecycle import WORKER_SHUTDOWN

# Set from the worker's MainProcess signal handler; with the threads pool that is the
# process running the monitors, so every loop sees it on its next check. (Celery's
# state.should_stop is 0 on a warm shutdown, which is falsy: an Event is unambiguous.)
shutting_down = threading.Event()


@worker_init.connect  # type: ignore[untyped-decorator]  # celery is untyped
def _serve_metrics(**_: object) -> None:
    # Set WORKER_METRICS_PORT on the monitors workers (one port per process on a host).
    port = get_settings().worker_metrics_port
    if port:
        metrics.serve(port)


@worker_shutting_down.connect  # type: ignore[untyped-decorator]  # celery is untyped
def _hand_over(**_: object) -> None:
    # A warm shutdown waits for every running task: monitors must end now. Setting their
    # stop events wakes the ones waiting on the router or on a backoff; each one then
    # hands its session over (tasks.monitor) instead of closing it.
    shutting_down.set()
    current = runtime.existing()
    if current is not None:
        current.stop_all(WORKER_SHUTDOWN)


@worker_shutdown.connect  # type: ignore[untyped-decorator]  # celery is untyped
def _close_connections(**_: object) -> None:
    # The monitors have returned by now: log out of the routers (a FIN frees the
    # router's API session at once instead of at its idle timeout) and stop the
    # keeper and batch threads.
    close_hub()
    runtime.close()
