"""A router's view as its watch stored it (keys.router_view), and the JSON the three
router-view routes answer: the top customers, the online sessions, the unknown ones.

The watch writes the view once per cycle (tasks/watch.py): every customer with a rate
or a session, and the sessions no customer has. These functions only sort, filter and
page it, so an answer costs one Redis read and no database query beyond the router's
existence. No Starlette here (web/queries).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.text import as_text
from models import Customer, Router
from settings import Settings
from tasks.router_view import top_json
from tasks.timestamps import rfc3339

TopOrder = Literal["download", "upload", "utilization"]
TOP_ORDERS: tuple[TopOrder, ...] = ("download", "upload", "utilization")


class RouterNotFound(LookupError):
    """No routers row and no customer naming this router id."""

    def __init__(self, router_id: str) -> None:
        super().__init__(f"no router {router_id!r}: neither a routers row nor any customer's mikrotik_id")
        self.router_id = router_id


def router_name(session: Session, router_id: str) -> str:
    """The router's name (its id when only customers name it); RouterNotFound otherwise."""
    row = session.get(Router, router_id)
    if row is not None:
        return row.name
    if session.scalar(select(Customer.id).where(Customer.mikrotik_id == router_id).limit(1)) is None:
        raise RouterNotFound(router_id)
    return router_id


@dataclass(frozen=True)
class StoredView:
    """keys.router_view as read: the watch's JSON, when it wrote it (Redis ms), the frame."""

    view: dict[str, Any] | None
    at_ms: int | None
    frame_id: str | None


def parse_stored(fields: Mapping[Any, Any] | None) -> StoredView:
    data = {as_text(k): as_text(v) for k, v in (fields or {}).items()}
    if "json" not in data:
        return StoredView(None, None, None)
    return StoredView(json.loads(data["json"]), int(data.get("at") or 0) or None, data.get("id") or None)


def _reason(stored: StoredView, settings: Settings) -> str | None:
    """Why there is nothing to show (None: there is)."""
    if not settings.router_watch:
        return "the router watch is off (ROUTER_WATCH=false)"
    if stored.view is None:
        return (
            "no frame yet: the router's watch has not finished a cycle (it is started within "
            f"RECONCILE_INTERVAL, {settings.reconcile_interval:g} s, of the router appearing)"
        )
    if stored.view.get("status") != "ok":
        return str(stored.view.get("reason") or "the router watch cannot read the router")
    return None


def _head(router_id: str, name: str, stored: StoredView, now_ms: int, settings: Settings) -> dict[str, Any]:
    reason = _reason(stored, settings)
    return {
        "status": "ok",
        "router": router_id,
        "router_name": name,
        "available": reason is None,
        "reason": reason,
        "timestamp": None
        if stored.at_ms is None
        else rfc3339(datetime.fromtimestamp(stored.at_ms / 1000, UTC)),
        "age_s": None if stored.at_ms is None else round(max(0, now_ms - stored.at_ms) / 1000, 3),
    }


def _rows(stored: StoredView, settings: Settings) -> list[dict[str, Any]]:
    if _reason(stored, settings) is not None or stored.view is None:
        return []
    return list(stored.view.get("rows") or [])


# -- top ------------------------------------------------------------------------------------------


def _utilization(row: Mapping[str, Any]) -> float:
    """The larger of the two directions' share of the package; -1 without a package."""
    shares = [
        row[bps] / row[package]
        for bps, package in (("download_bps", "package_download_bps"), ("upload_bps", "package_upload_bps"))
        if row.get(package)
    ]
    return max(shares) if shares else -1.0


def ranked(stored: StoredView, settings: Settings, by: TopOrder, limit: int) -> list[dict[str, Any]]:
    """The `limit` customers with a rate, highest first by `by` (utilization: the larger
    direction's share of the package; customers without a package last)."""
    rated = [r for r in _rows(stored, settings) if r.get("download_bps") is not None]
    if by == "download":
        rated.sort(key=lambda r: (r["download_bps"], r["upload_bps"]), reverse=True)
    elif by == "upload":
        rated.sort(key=lambda r: (r["upload_bps"], r["download_bps"]), reverse=True)
    else:
        rated.sort(key=lambda r: (_utilization(r), r["download_bps"]), reverse=True)
    return rated[:limit]


def top_answer(
    router_id: str,
    name: str,
    stored: StoredView,
    now_ms: int,
    settings: Settings,
    *,
    by: TopOrder,
    limit: int,
    rows: Iterable[Mapping[str, Any]],
    monitored: set[str],
) -> dict[str, Any]:
    view = stored.view if _reason(stored, settings) is None else None
    totals = {
        key: None if view is None else view.get(key)
        for key in ("interval_ms", "cycle_ms", "online", "customers", "download_bps", "upload_bps")
    }
    return {
        **_head(router_id, name, stored, now_ms, settings),
        "frame_id": None if view is None else stored.frame_id,
        **totals,
        "unknown": None if view is None else len(view.get("unknown") or []),
        "by": by,
        "limit": limit,
        "top": [top_json(row, row["customer_id"] in monitored) for row in rows],
    }


# -- sessions -------------------------------------------------------------------------------------


def _session_rows(stored: StoredView, settings: Settings) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in _rows(stored, settings):
        session = row.get("session")
        if session is None:
            continue
        out.append(
            {
                "session": session["kind"],
                "name": session["name"],
                "address": session["address"],
                "caller_id": session["caller_id"],
                "uptime_s": session["uptime_s"],
                "customer": {
                    "id": row["customer_id"],
                    "name": row["customer_name"],
                    "username": row["username"],
                    "service_type": row["service_type"],
                },
                "download_bps": row["download_bps"],
                "upload_bps": row["upload_bps"],
            }
        )
    for unknown in _unknown_rows(stored, settings):
        out.append({**unknown, "customer": None})
    return out


def _unknown_rows(stored: StoredView, settings: Settings) -> list[dict[str, Any]]:
    if _reason(stored, settings) is not None or stored.view is None:
        return []
    return [
        {
            "session": u["kind"],
            "name": u["name"],
            "address": u["address"],
            "caller_id": u["caller_id"],
            "uptime_s": u["uptime_s"],
            "download_bps": u["download_bps"],
            "upload_bps": u["upload_bps"],
        }
        for u in stored.view.get("unknown") or []
    ]


def _matches(row: Mapping[str, Any], needle: str) -> bool:
    customer = row.get("customer") or {}
    texts = (row["name"], row["address"], row["caller_id"], customer.get("name"), customer.get("username"))
    return any(needle in text.casefold() for text in texts if text)


def sessions_answer(
    router_id: str,
    name: str,
    stored: StoredView,
    now_ms: int,
    settings: Settings,
    *,
    q: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Online sessions (known customers and unknown logins alike), by login name; `q`
    finds text in the login, address, caller id, or the customer's name or username."""
    rows = _session_rows(stored, settings)
    if q:
        needle = q.casefold()
        rows = [r for r in rows if _matches(r, needle)]
    rows.sort(key=lambda r: (r["name"].casefold(), r["session"]))
    return {
        **_head(router_id, name, stored, now_ms, settings),
        "total": len(rows),
        "limit": limit,
        "offset": offset,
        "sessions": rows[offset : offset + limit],
    }


def unknown_answer(
    router_id: str, name: str, stored: StoredView, now_ms: int, settings: Settings
) -> dict[str, Any]:
    """Sessions whose login no customer of this router has: counted and listed."""
    rows = sorted(_unknown_rows(stored, settings), key=lambda r: (r["name"].casefold(), r["session"]))
    return {**_head(router_id, name, stored, now_ms, settings), "count": len(rows), "sessions": rows}
