"""watch_offline rules, evaluated by the reconciler (tasks/reconciler.py) each pass.

A router watch writes its router's view every cycle (keys.router_view: `at` in Redis
ms, `id` the cycle's top frame, "" when the watch wrote it to say the router is
offline). A router is "watch offline" when no ok view is younger than
stale_after (3 cycles and 2 s): its watch is dead, not launched, or cannot reach
the router. Since when counts from the view's `at` (when the frames stopped), or from
the first pass that found no view at all. The timers live in Redis
(keys.alert_timers("reconciler")) because passes run on any control worker.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from common.text import as_text
from models.enums import AlertKind
from settings import Settings
from tasks import alerts, keys
from tasks.alert_eval import Track, Transition, watch_offline
from tasks.alert_hooks import TIMERS_TTL_S, read_rules

log = logging.getLogger(__name__)

TIMERS_KEY = keys.alert_timers("reconciler")


def stale_after(settings: Settings) -> float:
    return 3 * settings.router_watch_interval + 2.0


def evaluate(client: redis.Redis, routers: dict[str, str], now_ms: int, settings: Settings) -> int:
    """One pass over every router under every enabled watch_offline rule; the alerts
    this pass changed."""
    if not (settings.alerts and settings.router_watch):
        return 0
    ruleset = read_rules(0)
    rules = [r for r in ruleset.rules if r.kind is AlertKind.WATCH_OFFLINE]
    if not rules or not routers:
        return 0
    ids = sorted(routers)
    with client.pipeline(transaction=False) as pipe:
        for router_id in ids:
            pipe.hmget(keys.router_view(router_id), ["at", "id"])
        views = pipe.execute()
    raw = client.get(TIMERS_KEY)
    try:
        saved: dict[str, Any] = json.loads(as_text(raw)) if raw else {}
    except ValueError:
        saved = {}
    now = now_ms / 1000.0
    kept: dict[str, Any] = {}
    out: list[Transition] = []
    for rule in rules:
        for router_id, (at, frame) in zip(ids, views):
            if not rule.covers_router(router_id):
                continue
            key = f"{rule.id}|{router_id}"
            data = saved.get(key)
            track = Track.from_json(data) if isinstance(data, dict) else Track()
            track.firing = (rule.id, f"router:{router_id}") in ruleset.open  # PostgreSQL says
            view_at = float(as_text(at)) / 1000.0 if at else None
            t = watch_offline(
                rule,
                router_id,
                track,
                view_at=view_at,
                view_ok=bool(frame),
                stale_after=stale_after(settings),
                now=now,
                resolve_s=settings.alert_resolve_s,
            )
            if t is not None:
                out.append(t)
            if not track.idle:
                kept[key] = track.to_json()
    client.set(TIMERS_KEY, json.dumps(kept, separators=(",", ":")), ex=TIMERS_TTL_S)
    changed = 0
    for t in out:
        changed += alerts.apply(t, client, settings)
    return changed
