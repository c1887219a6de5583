"""Session reports as the engine stored them in PostgreSQL, and what they must say,
computed from a session's retained stream entries apart from tasks/report.py."""

from __future__ import annotations

import math
import statistics
import uuid
from typing import Any

import redis

from harness.polling import wait_for
from tasks import sessions
from tests.tasks.report_entries import nearest_rank
from tests.tasks.streams import customer_entries
from web.queries.reports import ReportNotFound, get_report

INTERVAL = 1.0  # MONITOR_INTERVAL of tests/tasks/engine.py


def stored_report(session_id: str) -> dict[str, Any] | None:
    """The session's report as PostgreSQL holds it (web.queries, as the API reads it)."""
    try:
        with sessions.db() as s:
            return get_report(s, uuid.UUID(session_id))
    except ReportNotFound:
        return None


def wait_report(session_id: str, timeout: float) -> dict[str, Any]:
    return wait_for(lambda: stored_report(session_id), timeout, what=f"the report of {session_id}")


def session_entries(client: redis.Redis, customer_id: str, session_id: str) -> list[dict[str, Any]]:
    return [e for e in customer_entries(client, customer_id) if e.get("session_id") == session_id]


def expected_report(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's numbers, computed here from the retained entries, apart from tasks/report.py."""
    samples = [e for e in entries if e["type"] == "traffic"]
    probes = [e for e in entries if e["type"] == "latency"]
    out: dict[str, Any] = {"samples": len(samples)}
    for direction in ("download", "upload"):
        values = [e[f"{direction}_bps"] for e in samples]
        out[direction] = {
            "peak_bps": max(values),
            "avg_bps": round(statistics.fmean(values)),
            "p95_bps": nearest_rank(values, 95),
            "bytes": round(sum(values) * INTERVAL / 8),
        }
    answered = [float(e["rtt_ms"]) for e in probes if e.get("rtt_ms") not in (None, "")]
    out["rtt"] = {"probes": len(probes), "answered": len(answered)}
    return out


def assert_report_matches(report: dict[str, Any], expected: dict[str, Any]) -> None:
    assert report["samples"] == expected["samples"]
    for direction in ("download", "upload"):
        got, want = report[direction], expected[direction]
        assert (got["peak_bps"], got["avg_bps"], got["bytes"]) == (
            want["peak_bps"],
            want["avg_bps"],
            want["bytes"],
        ), direction
        # p95 is kept as float32: equal within its rounding, less than one sample's.
        assert math.isclose(got["p95_bps"], want["p95_bps"], rel_tol=2**-23, abs_tol=1), direction
    assert (report["rtt"]["probes"], report["rtt"]["answered"]) == (
        expected["rtt"]["probes"],
        expected["rtt"]["answered"],
    )
