"""A monitor session's report, computed as it runs: what the agent saw, kept for the ticket.

`SessionReport` is a pure accumulator (no I/O): the monitor feeds it every entry it
published (`observe`, traffic and latency entries; the rest are ignored) and, when the
session ends, `finish` turns it into the report's JSON (README, Session reports).
Its memory is bounded by the session's length: 4 bytes per sample and direction and
per answered probe (array('f')), so a 4-hour session at 1 s costs about 170 KiB, and
percentiles are exact up to float32's rounding (7 significant digits).

`report_from_stream` rebuilds one from the session's entries still retained in its
customer's stream: for the next attempt after a handover or a crash (it continues the
report where the stream says the last attempt was), and for the reconciler, which
finishes a session whose monitor died. Entries that expired before that make the report
`partial`.

Definitions (one place; the dashboard's verdict follows the same rules):
- p95: the nearest-rank 95th percentile (the smallest value with at least 95 % of the
  values at or below it); median: the middle value, or the mean of the two middle ones.
- bytes: sum of bps × interval / 8; avg: the mean of the samples; at_plan_s: seconds
  (samples × interval) at 90 % of the package's speed or more, null without a package.
- a probe is "load" when the latest sample before it was at 80 % of plan or more in
  either direction, "idle" when every direction with a plan was below 20 %.
- verdict "saturated by own traffic": at least DIAG_MIN_PROBES answered probes under
  load and idle each, and median(load) - median(idle) > DIAG_RTT_RISE_MS; else "loss
  without load": a probe lost while idle; else null.
"""

from __future__ import annotations

import math
import statistics
import threading
from array import array
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import redis

from common.text import as_text
from models.session_report import DIRECTION_FIELDS, DIRECTIONS, RTT_FIELDS
from settings import Settings, get_settings
from tasks.keys import customer_stream
from tasks.lifecycle import started_reason
from tasks.message import LATENCY, TRAFFIC
from tasks.timestamps import rfc3339

SATURATED = "saturated by own traffic"
LOSS_WITHOUT_LOAD = "loss without load"
AT_PLAN = 0.9
LOAD = 0.8
IDLE = 0.2
# XRANGE page size when rebuilding from a stream.
PAGE = 1000

# The identity of the session, as its entries name it (the latest entry wins).
IDENTITY = (
    "customer_id",
    "username",
    "customer_name",
    "router",
    "interface",
    "package",
    "package_download_bps",
    "package_upload_bps",
)
# What observe() reads of an entry; report_from_stream decodes only these.
_READ = (
    *IDENTITY,
    "type",
    "session_id",
    "seq",
    "fence",
    "reason",
    "download_bps",
    "upload_bps",
    "rtt_ms",
    "status",
)


def _number(value: Any) -> float | None:
    """An entry's value, decoded (int, float, None) or flat ("" for null) -> float or None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(round(number))


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return as_text(value)


class _Direction:
    """One direction's samples: their values (float32) and exact integer sums."""

    __slots__ = ("values", "total", "peak", "at_plan", "planned")

    def __init__(self) -> None:
        self.values = array("f")
        self.total = 0
        self.peak: int | None = None
        self.at_plan = 0  # samples at AT_PLAN of their plan or more
        self.planned = False  # a sample had a plan

    def add(self, bps: int, plan: int | None) -> None:
        self.values.append(bps)
        self.total += bps
        self.peak = bps if self.peak is None else max(self.peak, bps)
        if plan:
            self.planned = True
            if bps >= AT_PLAN * plan:
                self.at_plan += 1

    def summary(self, interval: float) -> dict[str, Any]:
        n = len(self.values)
        return {
            "peak_bps": self.peak,
            "avg_bps": round(self.total / n) if n else None,
            "p95_bps": round(percentile(sorted(self.values), 95)) if n else None,
            "bytes": round(self.total * interval / 8),
            "at_plan_s": round(self.at_plan * interval, 3) if self.planned else None,
        }


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (at least one)."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


def _median(values: array[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _p95(values: array[float]) -> float | None:
    return round(percentile(sorted(values), 95), 3) if values else None


class SessionReport:
    """The incremental report of one session; thread-safe (a monitor's ping may publish
    from another thread than its samples)."""

    def __init__(
        self,
        session_id: object,
        interval_s: float,
        *,
        rtt_rise_ms: float = 30,
        min_probes: int = 5,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        self.session_id = str(session_id)
        self.interval_s = float(interval_s)
        self.rtt_rise_ms = rtt_rise_ms
        self.min_probes = min_probes
        self.identity: dict[str, Any] = {name: None for name in IDENTITY}
        self.identity.update(identity or {})
        # Some of the session's entries were gone before they could be observed.
        self.partial = False
        self.download = _Direction()
        self.upload = _Direction()
        self.probes = 0
        self.rtt = array("f")  # answered probes
        self.rtt_idle = array("f")
        self.rtt_load = array("f")
        self.lost_idle = 0
        # The line's state at the latest sample: "load", "idle", "between" or None (unknown).
        self.line: str | None = None
        self._lock = threading.Lock()

    @property
    def samples(self) -> int:
        return len(self.download.values)

    def describe(self, meta: Mapping[str, Any]) -> None:
        """Whom the session measures, where its entries have not said it yet."""
        with self._lock:
            for name in IDENTITY:
                if self.identity.get(name) is None and meta.get(name) not in (None, ""):
                    self.identity[name] = meta[name]

    def observe(self, entry: Mapping[str, Any]) -> None:
        """One published entry, decoded or flat; traffic and latency count, others not.
        Whom the session measures comes from every entry that says it (samples and status
        events; latency entries name only the customer), the latest winning."""
        kind = entry.get("type")
        with self._lock:
            for name in IDENTITY:
                if name in entry:
                    value = entry[name]
                    if name.startswith("package_"):
                        self.identity[name] = _int(value)
                    else:
                        self.identity[name] = _text(value)
            if kind == TRAFFIC:
                self._sample(entry)
            elif kind == LATENCY:
                self._probe(entry)

    def _sample(self, entry: Mapping[str, Any]) -> None:
        down, up = _int(entry.get("download_bps")), _int(entry.get("upload_bps"))
        if down is None or up is None:
            return  # not a sample anyone could chart: not one to count either
        plans = (self.identity["package_download_bps"], self.identity["package_upload_bps"])
        self.download.add(down, plans[0])
        self.upload.add(up, plans[1])
        shares = [bps / plan for bps, plan in zip((down, up), plans) if plan]
        if not shares:
            self.line = None
        elif max(shares) >= LOAD:
            self.line = "load"
        elif max(shares) < IDLE:
            self.line = "idle"
        else:
            self.line = "between"

    def _probe(self, entry: Mapping[str, Any]) -> None:
        self.probes += 1
        rtt = _number(entry.get("rtt_ms"))
        if rtt is None or _text(entry.get("status")) is not None:
            if self.line == "idle":
                self.lost_idle += 1
            return
        self.rtt.append(rtt)
        if self.line == "load":
            self.rtt_load.append(rtt)
        elif self.line == "idle":
            self.rtt_idle.append(rtt)

    def verdict(self) -> str | None:
        load, idle = self.rtt_load, self.rtt_idle
        enough = len(load) >= self.min_probes and len(idle) >= self.min_probes
        if enough and statistics.median(load) - statistics.median(idle) > self.rtt_rise_ms:
            return SATURATED
        if self.lost_idle:
            return LOSS_WITHOUT_LOAD
        return None

    def finish(
        self, ended_at: datetime, reason: str, partial: bool = False, started_at: datetime | None = None
    ) -> dict[str, Any]:
        """The report's JSON. `started_at`: the session's start (its row's, the database
        clock); without one the session is taken to have started when it ended."""
        with self._lock:
            start = started_at or ended_at
            duration = max(0.0, (ended_at - start).total_seconds())
            expected = round(duration / self.interval_s)
            answered = len(self.rtt)
            loss = round(100 * (self.probes - answered) / self.probes, 2) if self.probes else None
            meta = self.identity
            return {
                "session_id": self.session_id,
                "customer_id": None if meta["customer_id"] is None else str(meta["customer_id"]),
                "username": meta["username"] or "",
                "customer_name": meta["customer_name"] or "",
                "router": meta["router"] or "",
                "interface": meta["interface"] or "",
                "started_at": rfc3339(start),
                "ended_at": rfc3339(ended_at),
                "duration_s": round(duration, 3),
                "interval_s": self.interval_s,
                "samples": self.samples,
                "missing_s": round(max(0, expected - self.samples) * self.interval_s),
                "stop_reason": reason,
                "partial": bool(partial or self.partial),
                "package": meta["package"],
                "package_download_bps": meta["package_download_bps"],
                "package_upload_bps": meta["package_upload_bps"],
                "download": self.download.summary(self.interval_s),
                "upload": self.upload.summary(self.interval_s),
                "rtt": {
                    "probes": self.probes,
                    "answered": answered,
                    "loss_pct": loss,
                    "median_ms": _median(self.rtt),
                    "p95_ms": _p95(self.rtt),
                    "idle_median_ms": _median(self.rtt_idle),
                    "idle_p95_ms": _p95(self.rtt_idle),
                    "load_median_ms": _median(self.rtt_load),
                    "load_p95_ms": _p95(self.rtt_load),
                },
                "verdict": self.verdict(),
            }


def new_report(session_id: object, settings: Settings | None = None, **kwargs: Any) -> SessionReport:
    """An empty report with the settings' interval and verdict thresholds."""
    settings = settings or get_settings()
    return SessionReport(
        session_id,
        settings.monitor_interval,
        rtt_rise_ms=settings.diag_rtt_rise_ms,
        min_probes=settings.diag_min_probes,
        **kwargs,
    )


# -- flat <-> nested: the CSV's columns and session_reports' columns are the same names -----


def flatten(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report with its nested parts as prefixed keys (download_peak_bps, rtt_median_ms)."""
    flat = {k: v for k, v in report.items() if k not in (*DIRECTIONS, "rtt")}
    for direction in DIRECTIONS:
        for name in DIRECTION_FIELDS:
            flat[f"{direction}_{name}"] = report[direction][name]
    for name in RTT_FIELDS:
        flat[f"rtt_{name}"] = report["rtt"][name]
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """flatten's inverse."""
    nested = {f"{d}_{n}" for d in DIRECTIONS for n in DIRECTION_FIELDS} | {f"rtt_{n}" for n in RTT_FIELDS}
    report = {k: v for k, v in flat.items() if k not in nested}
    for direction in DIRECTIONS:
        report[direction] = {name: flat[f"{direction}_{name}"] for name in DIRECTION_FIELDS}
    report["rtt"] = {name: flat[f"rtt_{name}"] for name in RTT_FIELDS}
    return report


# -- from the retained stream ---------------------------------------------------------------------

_READ_BYTES = tuple((name, name.encode()) for name in _READ)


def _fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    """The fields observe() reads, as text: a stream entry has some twenty, and a rebuild
    reads up to a retention's worth of them."""
    out: dict[str, str] = {}
    for name, key in _READ_BYTES:
        value = raw.get(key)
        if value is None:
            value = raw.get(name)
        if value is not None:
            out[name] = as_text(value)
    return out


def report_from_stream(
    client: redis.Redis,
    customer_id: object,
    session_id: object,
    settings: Settings | None = None,
    page: int = PAGE,
) -> SessionReport:
    """The session's report as far as its customer's stream still holds it, oldest entry
    first. `partial` when entries are missing: the session's oldest retained fenced entry
    is not its first attempt's `started` (seq 0), or its seq numbers skip."""
    report = new_report(session_id, settings)
    wanted = str(session_id)
    key = customer_stream(customer_id)
    first = True
    last_seq: int | None = None
    complete = True
    cursor = "-"
    while True:
        batch: Any = client.xrange(key, cursor, "+", count=page) or []
        for _id, raw in batch:
            entry = _fields(raw)
            if entry.get("session_id") != wanted:
                continue
            report.observe(entry)
            if _text(entry.get("fence")) is None:
                continue  # unfenced: written for the session by someone else (seq 0)
            seq = _int(entry.get("seq"))
            if seq is None:
                continue  # latency entries carry none
            if first:
                first = False
                started = entry.get("type") == "started" and entry.get("reason") == started_reason(1)
                complete = started and seq == 0
            elif last_seq is not None and seq != last_seq + 1:
                complete = False
            last_seq = seq
        if len(batch) < page:
            break
        cursor = f"({as_text(batch[-1][0])}"
    report.partial = first or not complete
    return report
