"""The worker process's lifecycle: what happens when a Celery worker shuts down.

Every worker signal handler of the engine lives here (app.py includes this module,
so every worker imports it at start).
"""

from __future__ import annotations

import threading
from typing import Any

from celery.signals import worker_init, worker_ready, worker_shutdown, worker_shutting_down

from settings import get_settings
from tasks import affinity, keys, lifecycle, metrics, runtime
from tasks.app import app
from tasks.hub import close_hub
from tasks.leases import LeaseHandle, dedicated_client
from tasks.lifecycle import ROUTER_MOVED, WORKER_SHUTDOWN

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


_affinity: affinity.AffinityKeeper | None = None


@worker_ready.connect  # type: ignore[untyped-decorator]  # celery is untyped
def _start_affinity(sender: Any = None, **_: object) -> None:
    # Only a monitors worker places routers (docs/architecture.md, Router affinity).
    global _affinity
    node = str(sender.hostname)
    lifecycle.set_worker_name(node)
    if keys.MONITOR_QUEUE not in sender.app.amqp.queues.consume_from:
        return
    settings = get_settings()
    _affinity = affinity.from_settings(
        dedicated_client(settings),
        node,
        busy=_busy_routers,
        consume=lambda queue: _control("add_consumer", queue, node),
        cancel=lambda queue: _control("cancel_consumer", queue, node),
        hand_over=_hand_over_router,
        settings=settings,
    )
    _affinity.start()


def _control(command: str, queue: str, node: str) -> None:
    # The worker's own consumer changes its queues on its own loop when the command
    # arrives: thread-safe, unlike calling the consumer from the keeper's thread. No
    # reply is awaited: a busy worker's main thread answers late, and the keeper must
    # not miss its round (its holds would expire); it sends every command again now
    # and then (AffinityKeeper.reassert_every), and a repeated one is harmless.
    getattr(app.control, command)(queue, destination=[node], reply=False)


def _running() -> list[LeaseHandle]:
    """The leases (monitors and watches) this process runs now."""
    current = runtime.existing()
    keeper = current.existing_keeper() if current is not None else None
    return keeper.handles() if keeper is not None else []


def _busy_routers() -> set[str]:
    return {h.router_id for h in _running()}


def _hand_over_router(router_id: str) -> None:
    for handle in _running():
        if handle.router_id == router_id:
            handle.request_stop(ROUTER_MOVED)


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
    global _affinity
    keeper, _affinity = _affinity, None
    if keeper is not None:
        keeper.close()
    close_hub()
    runtime.close()
