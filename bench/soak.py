"""Soak: K monitors for a long time, loss counted window by window, memory over time.

`make soak` (SOAK_MONITORS=1000, SOAK_SECONDS=3600, SOAK_WINDOW=60). One stack as
`make bench` builds it (bench/stack.py): the monitors start in one burst, then the run is
cut into back-to-back windows of SOAK_WINDOW seconds. Each window is measured exactly as
`make bench`'s steady window (bench/engine.py, EngineBench._steady): every sample the
router sent in it is looked for in its customer's own stream (which keeps
CUSTOMER_STREAM_RETENTION, 30 min, whatever the number of monitors) and in the frames
of every WebSocket client. Counting from the combined stream instead (trimmed to
STREAM_MAXLEN entries: 200 s at 1,000 monitors) is what made a 600 s run report 103,209
"lost" samples that every client had received.

After each window the resident set (VmRSS, not the peak) of every process of the stack
is sampled, and Redis's used memory. The summary gives each process's RSS slope in MB
per hour (least squares over the windows after the first, which is warm-up), Redis's
memory at its plateau (the last window), and the sums of lost, duplicate and
delivered samples over all windows. Between two windows about GRACE seconds (2.5) go
uncounted: the router's sends are recorded per window.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.engine import GRACE, LOG_DIR, EngineBench, Row
from bench.results import table, write_results
from bench.stack import Stack, base_settings, interrupt_once, rss_mb, run_main

MONITORS = int(os.environ.get("SOAK_MONITORS", "1000"))
TOTAL = float(os.environ.get("SOAK_SECONDS", "3600"))
WINDOW = float(os.environ.get("SOAK_WINDOW", "60"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "1"))
WS_CLIENTS = int(os.environ.get("SOAK_WS_CLIENTS", "3"))  # each reads every customer


@dataclass
class Window:
    index: int
    started_s: float  # seconds since the burst, at the window's start
    seconds: float
    router_sent: int
    lost: int
    duplicates: int
    seq_gaps: int
    ws_expected: int
    ws_delivered: int
    p99_ms: float
    ws_p99_ms: float
    redis_used_mb: float
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_percent: dict[str, float] = field(default_factory=dict)


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour; 0 with fewer than 2."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return round(cov / var * 3600, 2)


def summarize(windows: list[Window]) -> dict[str, Any]:
    """Totals over every window, and each process's RSS slope after the warm-up window."""
    steady = windows[1:] if len(windows) > 2 else windows
    names = sorted({name for w in windows for name in w.rss_mb})
    slopes = {
        name: slope_per_hour([(w.started_s + w.seconds, w.rss_mb[name]) for w in steady if name in w.rss_mb])
        for name in names
    }
    return {
        "windows": len(windows),
        "counted_s": round(sum(w.seconds for w in windows), 1),
        "router_sent": sum(w.router_sent for w in windows),
        "lost": sum(w.lost for w in windows),
        "duplicates": sum(w.duplicates for w in windows),
        "seq_gaps": sum(w.seq_gaps for w in windows),
        "ws_expected": sum(w.ws_expected for w in windows),
        "ws_delivered": sum(w.ws_delivered for w in windows),
        "worst_ws_p99_ms": max((w.ws_p99_ms for w in windows), default=0.0),
        "redis_plateau_mb": windows[-1].redis_used_mb if windows else 0.0,
        "rss_first_mb": windows[0].rss_mb if windows else {},
        "rss_last_mb": windows[-1].rss_mb if windows else {},
        "rss_slope_mb_per_h": slopes,
    }


def run(stack: Stack) -> list[Window]:
    bench = EngineBench(stack)
    chosen = [c["id"] for c in stack.customers[:MONITORS]]
    filters: list[list[str] | None] = [None] * WS_CLIENTS
    stack.start_monitors(MONITORS, WORKERS, tag=f"-soak{MONITORS}")
    clients = stack.ws_clients(filters)
    windows: list[Window] = []
    try:
        clients.ask("ready 30")
        burst = Row(monitors=MONITORS, workers=WORKERS)
        bench._burst_start(burst, clients, chosen)
        t0 = time.monotonic()
        index = 0
        while time.monotonic() - t0 + WINDOW <= TOTAL + 1e-6 or index == 0:
            row = Row(monitors=MONITORS, workers=WORKERS)
            started = time.monotonic() - t0
            bench._steady(row, clients, filters, bench._sessions_of, seconds=WINDOW)
            pids = {**stack.pids(), "ws-clients": clients.proc.pid}
            window = Window(
                index=index,
                started_s=round(started, 1),
                seconds=row.window_s,
                router_sent=row.router_sent,
                lost=row.lost,
                duplicates=row.duplicates,
                seq_gaps=row.seq_gaps,
                ws_expected=row.ws_samples_expected,
                ws_delivered=row.ws_samples_delivered,
                p99_ms=row.latency_p99_ms,
                ws_p99_ms=row.ws_latency_ms.get("p99", 0.0),
                redis_used_mb=row.redis_used_mb,
                rss_mb={name: rss_mb(pid) for name, pid in pids.items()},
                cpu_percent={p["process"]: p["cpu_percent"] for p in row.processes},
            )
            windows.append(window)
            print(
                f"window {index} at {window.started_s:.0f}s: sent {window.router_sent} lost {window.lost}"
                f" ws {window.ws_delivered}/{window.ws_expected} p99 {window.ws_p99_ms} ms"
                f" redis {window.redis_used_mb} MB",
                file=sys.stderr,
                flush=True,
            )
            index += 1
    finally:
        clients.stop()
        stack.stop_monitors()
        stack.clear_streams()
    return windows


def print_tables(windows: list[Window], summary: dict[str, Any]) -> None:
    rows = [
        {
            "window": w.index,
            "at s": w.started_s,
            "sent": w.router_sent,
            "lost": w.lost,
            "dup": w.duplicates,
            "ws delivered/expected": f"{w.ws_delivered}/{w.ws_expected}",
            "ws p99 ms": w.ws_p99_ms,
            "redis MB": w.redis_used_mb,
            **{f"{name} RSS": mb for name, mb in sorted(w.rss_mb.items())},
        }
        for w in windows
    ]
    if rows:
        print(table(rows, [(k, k) for k in rows[0]]))
    print()
    slopes = [
        {
            "process": name,
            "RSS first MB": summary["rss_first_mb"].get(name),
            "RSS last MB": summary["rss_last_mb"].get(name),
            "slope MB/h": slope,
        }
        for name, slope in summary["rss_slope_mb_per_h"].items()
    ]
    if slopes:
        print(table(slopes, [(k, k) for k in slopes[0]]))
    print()
    print(
        f"{summary['windows']} windows, {summary['counted_s']} s counted: sent {summary['router_sent']},"
        f" lost {summary['lost']}, duplicates {summary['duplicates']}, seq gaps {summary['seq_gaps']},"
        f" WebSocket {summary['ws_delivered']}/{summary['ws_expected']},"
        f" Redis at plateau {summary['redis_plateau_mb']} MB"
    )


def main() -> int:
    if MONITORS < 1 or WINDOW <= GRACE or TOTAL < WINDOW:
        print("need SOAK_MONITORS >= 1, SOAK_WINDOW > 2.5 and SOAK_SECONDS >= SOAK_WINDOW", file=sys.stderr)
        return 2
    threading.stack_size(512 * 1024)
    env = {"MAX_CONCURRENT_MONITORS": str(MONITORS)}
    with interrupt_once(), Stack(pppoe=MONITORS, log_dir=LOG_DIR, env=env) as stack:
        windows = run(stack)
    summary = summarize(windows)
    print_tables(windows, summary)
    settings: dict[str, Any] = {
        **base_settings(),
        **env,
        "monitors": MONITORS,
        "seconds": TOTAL,
        "window_seconds": WINDOW,
        "workers": WORKERS,
        "ws_clients": WS_CLIENTS,
    }
    path = write_results("soak", windows, settings=settings, summary=summary)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
