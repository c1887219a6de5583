"""Benchmark: what the monitors' router-side ping costs, and how soon a report is written
(`make bench-ping`).

Not a test: nothing here asserts. Issue 19's targets: with ping on, K=1,000 monitors'
worker CPU rises by no more than 30% over traffic alone and router -> WebSocket p99
stays within 20 ms; a session's report is in PostgreSQL within 2 s of its stop.

The deployment is bench/stack.py's (one simulator, ONE monitors worker for K). The
same K customers run twice through bench/engine.py's whole sequence (burst start,
steady window, probes, storm, burst stop): first with MONITOR_PING=false, then with
MONITOR_PING=true (each run's worker is started with it). The steady window also counts
the latency entries the monitors wrote (one per probe reply: about K a second).
Then BENCH_REPORT_PROBES (20) monitors, one at a time: start, wait for a few
samples, stop through the REST API, and time the REST call -> the session's row in
`session_reports`.

Prints one table and writes bench/results/ping.json.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.engine import PROBES, STORM, EngineBench, Row, stats, wait_until
from bench.results import RESULTS_DIR, table, write_results
from bench.stack import BASE_ENV, Stack, interrupt_once

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


def _latency_entries(stack: Stack, since_ms: int, until_ms: int) -> int:
    from tasks.keys import COMBINED_STREAM

    count, cursor = 0, f"{since_ms}"
    while True:
        batch: Any = stack.redis.xrange(COMBINED_STREAM, min=cursor, max=until_ms, count=5000)
        count += sum(1 for _, fields in batch if fields.get(b"type") == b"latency")
        if len(batch) < 5000:
            return count
        cursor = "(" + batch[-1][0].decode()


def run_engine(stack: Stack, bench: EngineBench, ping: str) -> PingRow:
    stack.env["MONITOR_PING"] = ping  # the monitors worker of this run starts with it
    t0 = time.time()
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
    )
    # The combined stream keeps the run's entries until the next run clears it; count the
    # latency entries of the steady window (the middle of the run, BENCH_SECONDS long).
    if row.window_s:
        entries = _latency_entries(stack, int(t0 * 1000), int(time.time() * 1000))
        out.latency_entries_per_s = round(entries / max(1.0, time.time() - t0), 1)
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
        **{k: v for k, v in BASE_ENV.items() if k not in ("ENV_FILE", "API_TOKEN")},
        **env,
        "monitors": SIZE,
    }
    path = write_results("ping", rows, settings=settings, cpu_rise_percent=rise, stop_to_report_ms=reports)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: everything started was stopped", file=sys.stderr)
        sys.exit(130)
