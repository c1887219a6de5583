"""Readiness: could this deployment start a monitor and keep it running right now?

Four checks, run side by side, each bounded in time:
- database: SELECT 1;
- redis: PING;
- workers: at least one Celery worker consuming the `monitors` queue answers a
  control broadcast within WORKER_TIMEOUT seconds (the first one ends the wait);
- beat: the reconciler's last pass (tasks.keys.RECONCILER_LAST_RUN, epoch ms) is
  recent, which proves beat schedules it and a `default` worker runs it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from common.text import as_text
from tasks.app import app
from tasks.keys import RECONCILER_LAST_RUN
from web.state import AppState

WORKER_TIMEOUT = 2.0
# Beat runs the reconciler every RECONCILE_INTERVAL; three missed passes plus this
# slack (queueing, a busy control worker) mean it is not running.
BEAT_MISSED_PASSES = 3
BEAT_SLACK_S = 5.0

Check = dict[str, Any]

# Replies to a broadcast come back on one reply queue per process: two collections
# at once could take each other's replies, so this process runs one at a time.
_broadcast_lock = threading.Lock()


class _Found(Exception):
    """Raised from the reply callback to stop waiting once a monitors worker answered."""


def monitors_workers(timeout: float) -> list[str]:
    """Names of workers consuming `monitors` that answered within `timeout` (first one only)."""
    found: list[str] = []

    def on_reply(reply: dict[str, Any]) -> None:
        for name, queues in reply.items():
            if isinstance(queues, list) and any(q.get("name") == "monitors" for q in queues):
                found.append(name)
                raise _Found

    with _broadcast_lock:
        try:
            app.control.broadcast("active_queues", reply=True, timeout=timeout, callback=on_reply)
        except _Found:
            pass
        finally:
            # Replies that arrived after we stopped listening would otherwise pile up here.
            app.control.mailbox.unclaimed.clear()
    return found


async def check_database(state: AppState) -> Check:
    def ping() -> None:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await state.run(ping)
    except SQLAlchemyError as exc:
        return {"ok": False, "detail": f"database unavailable ({type(exc).__name__})"}
    return {"ok": True, "detail": "SELECT 1 answered"}


async def check_redis(state: AppState) -> Check:
    try:
        await state.redis.ping()
    except (redis.RedisError, OSError) as exc:
        return {"ok": False, "detail": f"redis unavailable ({type(exc).__name__})"}
    return {"ok": True, "detail": "PING answered"}


async def check_workers(state: AppState) -> Check:
    try:
        names = await state.run(monitors_workers, WORKER_TIMEOUT)
    except (BrokerError, redis.RedisError, OSError) as exc:
        return {"ok": False, "detail": f"broker unavailable ({type(exc).__name__})", "workers": []}
    if not names:
        return {
            "ok": False,
            "detail": f"no worker consuming the monitors queue answered within {WORKER_TIMEOUT:g} s",
            "workers": [],
        }
    return {"ok": True, "detail": "a monitors worker answered", "workers": names}


async def check_beat(state: AppState) -> Check:
    limit = BEAT_MISSED_PASSES * state.settings.reconcile_interval + BEAT_SLACK_S
    try:
        raw = await state.redis.get(RECONCILER_LAST_RUN)
    except (redis.RedisError, OSError) as exc:
        return {"ok": False, "detail": f"redis unavailable ({type(exc).__name__})", "last_run_age_s": None}
    if raw is None:
        return {
            "ok": False,
            "detail": "the reconciler has not run: is beat running, and a worker on the default queue?",
            "last_run_age_s": None,
        }
    try:
        age = time.time() - int(as_text(raw)) / 1000.0
    except ValueError:
        return {
            "ok": False,
            "detail": "the reconciler's last-run key is not epoch ms",
            "last_run_age_s": None,
        }
    detail = f"last reconciler pass {age:.1f} s ago (limit {limit:g} s)"
    return {"ok": age <= limit, "detail": detail, "last_run_age_s": round(age, 3)}


async def readiness(state: AppState) -> dict[str, Check]:
    checks: dict[str, Check] = {}

    async def run(name: str, check: Any) -> None:
        checks[name] = await check(state)

    async with anyio.create_task_group() as group:
        group.start_soon(run, "database", check_database)
        group.start_soon(run, "redis", check_redis)
        group.start_soon(run, "workers", check_workers)
        group.start_soon(run, "beat", check_beat)
    return {name: checks[name] for name in ("database", "redis", "workers", "beat")}
