"""Benchmark: what the monitors' router-side ping costs, and how soon a report is written
(`make bench-ping`).

Not a test: nothing here asserts. Issue 19's targets: with ping on, K=1,000 monitors'
worker CPU rises by no more than 30% over traffic alone and router -> WebSocket p99
stays within 20 ms; a session's report is in PostgreSQL within 2 s of its stop.

The deployment is bench/stack.py's (one simulator, ONE monitors worker for K). The
same K customers run twice through bench/engine.py's whole sequence (burst start,
steady window, probes, storm, burst stop): first with MONITOR_PING=false, then with
MONITOR_PING=true (each run's worker is started with it). The run also counts the
latency entries the monitors wrote (one per probe reply: about K a second; the median
second is shown).
Then BENCH_REPORT_PROBES (20) monitors, one at a time: start, wait for a few
samples, stop through the REST API, and time the REST call -> the session's row in
`session_reports`.

Prints one table and writes bench/results/ping.json.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.engine import PROBES, STORM, EngineBench, Row, stats, wait_until
from bench.results import RESULTS_DIR, table, write_results
from bench.stack import Stack, base_settings, interrupt_once, run_main

LOG_DIR = RESULTS_DIR / "ping-logs"

SIZE = int(os.environ.get("BENCH_PING_SIZE", "1000"))
REPORT_PROBES = int(os.environ.get("BENCH_REPORT_PROBES", "20"))


@dataclass
class PingRow:
    ping: str
    monitors: int
    worker_cpu_percent: float = 0.0
    worker_rss_mb: float = 0.0
    router_to_ws_p50_ms: float | None = None
    router_to_ws_p99_ms: float | None = None
    router_to_stream_p99_ms: float = 0.0
    samples_per_s: float = 0.0
    latency_entries_per_s: float = 0.0
    router_running_commands: int = 0
    redis_used_mb: float = 0.0
    lost: int = 0
    engine: Row | None = None
    notes: list[str] = field(default_factory=list)


class LatencyCounter:
    """Counts the latency entries of the combined stream per second while a run goes on
    (the run clears its streams at the end, so they are read as they come)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.per_second: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="latency-counter", daemon=True)

    def __enter__(self) -> LatencyCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        from tasks.keys import COMBINED_STREAM

        last: Any = self.stack.redis.xrevrange(COMBINED_STREAM, count=1)
        cursor = last[0][0].decode() if last else "0-0"
        while not self._stop.wait(0.5):
            while True:
                batch: Any = self.stack.redis.xrange(COMBINED_STREAM, min=f"({cursor}", count=5000)
                for entry_id, fields in batch:
                    if fields.get(b"type") == b"latency":
                        self.per_second[int(entry_id.split(b"-")[0]) // 1000] += 1
                if batch:
                    cursor = batch[-1][0].decode()
                if len(batch) < 5000:
                    break

    def median_rate(self) -> float:
        """The median second's count over the seconds that had any: the steady rate."""
        counts = sorted(self.per_second.values())
        return float(counts[len(counts) // 2]) if counts else 0.0


def run_engine(stack: Stack, bench: EngineBench, ping: str) -> PingRow:
    stack.env["MONITOR_PING"] = ping  # the monitors worker of this run starts with it
    with LatencyCounter(stack) as latency:
        row = bench.run(SIZE, 1)
    out = PingRow(
        ping=ping,
        monitors=SIZE,
        worker_cpu_percent=row.worker_cpu_percent,
        worker_rss_mb=row.worker_rss_mb,
        router_to_ws_p50_ms=row.ws_latency_ms.get("p50"),
        router_to_ws_p99_ms=row.ws_latency_ms.get("p99"),
        router_to_stream_p99_ms=row.latency_p99_ms,
        samples_per_s=row.samples_per_s,
        router_running_commands=row.router_running_commands,
        redis_used_mb=row.redis_used_mb,
        lost=row.lost,
        engine=row,
        notes=list(row.notes),
        latency_entries_per_s=latency.median_rate(),
    )
    return out


def report_latency(stack: Stack, bench: EngineBench) -> dict[str, float]:
    """REST stop -> the session's report row, one monitor at a time."""
    from sqlalchemy import select

    from models.session_report import SessionReport
    from tasks import sessions
    from tasks.keys import customer_stream

    stack.env["MONITOR_PING"] = "true"
    customers = [c["id"] for c in stack.customers[-REPORT_PROBES:]]
    stack.start_monitors(REPORT_PROBES, 1, tag="-reports")
    waits: list[float] = []
    try:
        for cid in customers:
            started = bench.start_many([cid], mode="single")
            sid = started[cid][0]
            if sid is None:
                continue
            stream = customer_stream(cid)

            def flowing(stream: str = stream) -> bool:
                return int(stack.redis.xlen(stream)) >= 5

            wait_until(flowing, timeout=30)
            called = time.monotonic()
            stack.http.post("/api/monitor/stop", params={"customer_id": cid})

            session = uuid.UUID(sid)

            def written(sid: uuid.UUID = session) -> bool:
                with sessions.db() as s:
                    found = s.scalar(select(SessionReport.session_id).where(SessionReport.session_id == sid))
                return found is not None

            if wait_until(written, timeout=30, step=0.02):
                waits.append((time.monotonic() - called) * 1000)
    finally:
        stack.stop_monitors()
        stack.clear_streams()
    return stats(waits)


def main() -> int:
    extra = PROBES + STORM
    env = {
        "MAX_CONCURRENT_MONITORS": str(SIZE + extra + REPORT_PROBES),
        "PING_MAX_PER_ROUTER": str(SIZE + extra + REPORT_PROBES),
    }
    rows: list[PingRow] = []
    with interrupt_once(), Stack(pppoe=SIZE + extra + REPORT_PROBES, log_dir=LOG_DIR, env=env) as stack:
        bench = EngineBench(stack)
        for ping in ("false", "true"):
            rows.append(run_engine(stack, bench, ping))
            print(f"MONITOR_PING={ping} done", file=sys.stderr, flush=True)
        reports = report_latency(stack, bench)
    print(
        table(
            rows,
            [
                ("ping", "ping"),
                ("monitors", "monitors"),
                ("worker_cpu_percent", "worker CPU %"),
                ("worker_rss_mb", "worker RSS MB"),
                ("router_to_stream_p99_ms", "router>stream p99 ms"),
                ("router_to_ws_p50_ms", "router>ws p50 ms"),
                ("router_to_ws_p99_ms", "router>ws p99 ms"),
                ("samples_per_s", "samples/s"),
                ("latency_entries_per_s", "latency entries/s"),
                ("router_running_commands", "router commands running"),
                ("redis_used_mb", "Redis MB"),
                ("lost", "lost"),
            ],
        )
    )
    off, on = rows[0], rows[1]
    rise = None
    if off.worker_cpu_percent:
        rise = round(100 * (on.worker_cpu_percent - off.worker_cpu_percent) / off.worker_cpu_percent, 1)
        print(f"worker CPU with ping: {rise:+} % over traffic alone (target: at most +30 %)")
    print(
        f"stop -> report in PostgreSQL: p50 {reports['p50']} ms, p99 {reports['p99']} ms,"
        f" max {reports['max']} ms over {reports['n']} stops (target: within 2 s)"
    )
    for r in rows:
        for note in r.notes:
            print(f"ping={r.ping}: {note}")
    settings: dict[str, Any] = {
        **base_settings(),
        **env,
        "monitors": SIZE,
    }
    path = write_results("ping", rows, settings=settings, cpu_rise_percent=rise, stop_to_report_ms=reports)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
