"""A router watch's life, as the reconciler and the task agree on it.

One watch per router (docs/architecture.md, The router watch): a long-running task
(tasks/watch.py) on its router's queue (keys.router_queue, placed by tasks/affinity.py),
held by a fenced lease of the watches' own lease space (tasks.semaphore.WATCHES: its
owner key is per router, its slots apart from the monitors'), renewed and stopped by
the process's lease keeper like a monitor's.

    token     "watch:<router>:<random>", one per launch; the lease's key
    task id   "watch-<router>-<random>": Flower shows one row per router, its keyword
              arguments naming the router
    stop key  keys.watch_stop(router), with the reason

Every reconcile pass (`reconcile_watches`) frees expired watch leases, launches a watch
for every router that has none alive (the routers table, plus every `mikrotik_id`
customers name without a row: the settings' default router), and asks watches of
routers that vanished, or all of them when ROUTER_WATCH=false, to stop. There is no
SQL row: the routers are what should be watched, the lease is what is.
"""

from __future__ import annotations

import logging
import uuid

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Customer, Router
from settings import Settings, get_settings
from tasks import keys, lifecycle
from tasks.app import app
from tasks.semaphore import WATCHES, AlreadyMonitored, Semaphore, StorageFull

log = logging.getLogger(__name__)

WATCH_TASK = "tasks.watch.watch"
# Watches are not capped globally (one per router is the cap: the owner key); the
# semaphore wants a number.
NO_CAP = 1_000_000
ROUTER_GONE = "router removed"
DISABLED = "router watch disabled (ROUTER_WATCH=false)"


def new_token(router_id: str) -> str:
    return f"watch:{router_id}:{uuid.uuid4().hex[:12]}"


def task_id_of(token: str) -> str:
    return token.replace(":", "-")


def semaphore(client: redis.Redis) -> Semaphore:
    return Semaphore.from_settings(client, space=WATCHES)


def known_routers(session: Session) -> dict[str, str]:
    """Every router to watch, id -> name: the routers table and every mikrotik_id that
    customers name without a row (watched through MIKROTIK_*)."""
    routers = {row.id: row.name for row in session.scalars(select(Router))}
    for (router_id,) in session.execute(select(Customer.mikrotik_id).distinct()):
        if router_id and router_id.strip():
            routers.setdefault(router_id, router_id)
    return routers


def launch(router_id: str, router_name: str, token: str, fence: int, enqueued_ms: int) -> None:
    """Send a watch's message (its lease reserved); the router rides along for Flower."""
    app.send_task(
        WATCH_TASK,
        args=[router_id, token, fence],
        kwargs={"enqueued_ms": enqueued_ms, "router": router_id, "router_name": router_name},
        task_id=task_id_of(token),
        queue=keys.router_queue(router_id),
        ignore_result=True,
    )


def request_stop(client: redis.Redis, router_id: str, reason: str, settings: Settings | None = None) -> None:
    """Ask the router's watch to stop; its keeper sees it at once (pub/sub) or at its next poll."""
    settings = settings or get_settings()
    ttl_ms = int(4 * settings.monitor_lease_ttl * 1000)
    lifecycle.set_stop_key(client, keys.watch_stop(router_id), reason, ttl_ms, f"watch:{router_id}")


def reconcile_watches(client: redis.Redis, routers: dict[str, str], settings: Settings) -> dict[str, int]:
    """One pass over the watches (see the module docstring); returns counters for the log."""
    sem = semaphore(client)
    summary = {"watches_freed": len(sem.free_expired()), "watches_started": 0, "watches_stopped": 0}
    alive = {h.customer_id for h in sem.holders() if h.customer_id}
    wanted = routers if settings.router_watch else {}
    for router_id in sorted(alive - set(wanted)):
        reason = ROUTER_GONE if settings.router_watch else DISABLED
        request_stop(client, router_id, reason, settings)
        summary["watches_stopped"] += 1
    for router_id, name in sorted(wanted.items()):
        if router_id in alive:
            continue
        if _start(client, sem, router_id, name, settings):
            summary["watches_started"] += 1
    return summary


def _start(client: redis.Redis, sem: Semaphore, router_id: str, name: str, settings: Settings) -> bool:
    token = new_token(router_id)
    try:
        fence = sem.acquire(
            token, router_id, router_id, global_limit=NO_CAP, router_limit=1, ttl=settings.monitor_lease_ttl
        )
    except (AlreadyMonitored, StorageFull) as exc:
        log.info("router watch of %s not started: %s", router_id, exc)
        return False
    # A stop asked of an earlier watch of this router (removed, then back; disabled,
    # then enabled) is not this one's: no watch of it is alive now.
    client.delete(keys.watch_stop(router_id))
    try:
        launch(router_id, name, token, fence, enqueued_ms=sem.now_ms())
    except Exception:
        sem.release(token, router_id, router_id)
        raise
    log.info("router watch of %s launched (%s)", router_id, token)
    return True
