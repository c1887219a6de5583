"""Benchmark: K queue monitors (hotspot and static IP) on one router (`make bench-queues`).

Not a test: nothing here asserts. A queue monitor reads its customer's simple queue
(tasks/sources.py, QueueSource); what this measures is what K of them cost the router
and the worker: router commands per second (the simulator's own count: every command it
received in the window, and the `/queue/simple/print`s among them) against K samples per
second delivered, and the monitors worker's CPU and peak RSS.

The deployment is bench/stack.py's with a simulator serving the largest size's worth of
queue customers, half hotspot (queues found by name) and half static IP (found by target
address), and ONE monitors worker. For each size K in BENCH_QUEUE_SIZES (default 500): K
starts through `POST /api/monitor/start-many` (both kinds alternately), a wait until each
has a sample in its stream, BENCH_SETTLE seconds, then a window of BENCH_SECONDS (20):
router commands, traffic entries written (from the combined stream's ids), worker CPU;
then K stops through the REST API.

Prints one table and writes bench/results/queues.json.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.engine import EngineBench, wait_until
from bench.results import RESULTS_DIR, table, write_results
from bench.stack import Stack, base_settings, interrupt_once, run_main

LOG_DIR = RESULTS_DIR / "queues-logs"

SIZES = [int(t) for t in os.environ.get("BENCH_QUEUE_SIZES", "500").split(",") if t.strip()]
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
SETTLE = float(os.environ.get("BENCH_SETTLE", "3"))
HOTSPOT_SHARE = 0.5
PRINT = "/queue/simple/print"


@dataclass
class Row:
    monitors: int
    window_s: float = 0.0
    live: int = 0  # monitors whose latest entry is a sample when the window begins
    router_commands_per_s: float = 0.0
    queue_prints_per_s: float = 0.0  # of which /queue/simple/print
    commands_per_s_by_word: dict[str, float] = field(default_factory=dict)
    samples_per_s: float = 0.0
    expected_per_s: float = 0.0
    worker_cpu_percent: float = 0.0
    worker_rss_mb: float = 0.0
    simulator_cpu_percent: float = 0.0
    router_sessions: int = 0
    notes: list[str] = field(default_factory=list)


def _traffic_in(stack: Stack, session_ids: set[str], since_ms: int, until_ms: int) -> int:
    """Traffic entries of these sessions whose stream id time falls in [since, until]."""
    from tasks.keys import COMBINED_STREAM

    count = 0
    cursor: str | int = since_ms
    while True:
        batch: Any = stack.redis.xrange(COMBINED_STREAM, min=cursor, max=until_ms, count=5000)
        for _, fields in batch:
            if fields.get(b"type") == b"traffic" and fields.get(b"session_id", b"").decode() in session_ids:
                count += 1
        if len(batch) < 5000:
            return count
        cursor = "(" + batch[-1][0].decode()


def _has_sample(stack: Stack, customer_id: str) -> bool:
    from tasks.keys import customer_stream

    entries: Any = stack.redis.xrevrange(customer_stream(customer_id), count=1)
    return bool(entries) and entries[0][1].get(b"type") == b"traffic"


def run(stack: Stack, bench: EngineBench, k: int) -> Row:
    row = Row(monitors=k, expected_per_s=float(k))
    chosen = [c["id"] for c in stack.queue_customers[:k]]
    stack.start_monitors(k, 1, tag=f"-q{k}")
    try:
        started = bench.start_many(chosen)
        sessions = {cid: sid for cid, (sid, _, _) in started.items() if sid}
        for cid, (_, _, outcome) in list(started.items())[:3]:
            if cid not in sessions:
                row.notes.append(f"start of {cid} refused: {outcome}")
        wait_until(lambda: all(_has_sample(stack, c) for c in sessions), timeout=60 + k / 20, step=1.0)
        row.live = sum(_has_sample(stack, c) for c in sessions)
        if row.live < len(sessions):
            row.notes.append(
                f"only {row.live} of {len(sessions)} monitors had a sample as their latest entry"
                " when the window began (the others: offline)"
            )
        time.sleep(SETTLE)
        before = stack.sim.ask("stats")
        meter = stack.meter()
        t_a, m_a = time.time(), time.monotonic()
        time.sleep(SECONDS)
        t_b = time.time()
        processes = meter.read()
        after = stack.sim.ask("stats")
        row.window_s = round(time.monotonic() - m_a, 1)
        commands = after["commands_total"] - before["commands_total"]
        row.router_commands_per_s = round(commands / row.window_s, 2)
        counts0, counts1 = before["command_counts"], after["command_counts"]
        row.commands_per_s_by_word = {
            word: round((n - counts0.get(word, 0)) / row.window_s, 2) for word, n in counts1.items()
        }
        row.queue_prints_per_s = row.commands_per_s_by_word.get(PRINT, 0.0)
        row.router_sessions = after["open_sessions"]
        time.sleep(1.0)  # the last cycle's publishes
        traffic = _traffic_in(stack, set(sessions.values()), int(t_a * 1000), int(t_b * 1000))
        row.samples_per_s = round(traffic / row.window_s, 1)
        workers = [p for p in processes if p["process"].startswith("bench-mon")]
        row.worker_cpu_percent = round(sum(p["cpu_percent"] for p in workers), 1)
        row.worker_rss_mb = round(sum(p["peak_rss_mb"] for p in workers), 1)
        row.simulator_cpu_percent = next(p["cpu_percent"] for p in processes if p["process"] == "simulator")
        bench.stop_many(list(sessions))
        from tasks import runtime

        if not wait_until(lambda: runtime.current().semaphore.in_use() == 0, timeout=30):
            row.notes.append("slots still in use 30 s after the stops")
    finally:
        stack.stop_monitors()
        stack.clear_streams()
    return row


def main() -> int:
    if not SIZES:
        print("BENCH_QUEUE_SIZES is empty", file=sys.stderr)
        return 2
    biggest = max(SIZES)
    hotspot = round(biggest * HOTSPOT_SHARE)
    env = {"MAX_CONCURRENT_MONITORS": str(biggest)}
    rows: list[Row] = []
    with (
        interrupt_once(),
        Stack(pppoe=0, hotspot=hotspot, static=biggest - hotspot, log_dir=LOG_DIR, env=env) as stack,
    ):
        bench = EngineBench(stack)
        # Alternate hotspot and static customers, so every size has both kinds.
        hotspots = [c for c in stack.queue_customers if c["service_type"] == "hotspot"]
        statics = [c for c in stack.queue_customers if c["service_type"] == "static_ip"]
        stack.queue_customers = [c for pair in zip(hotspots, statics) for c in pair] + (
            hotspots[len(statics) :] + statics[len(hotspots) :]
        )
        for k in SIZES:
            rows.append(run(stack, bench, k))
            print(f"K={k} done", file=sys.stderr, flush=True)
    print(
        table(
            rows,
            [
                ("monitors", "queue monitors"),
                ("live", "live"),
                ("router_commands_per_s", "router commands/s"),
                ("queue_prints_per_s", "of which queue prints/s"),
                ("samples_per_s", "samples/s"),
                ("expected_per_s", "expected/s"),
                ("worker_cpu_percent", "worker CPU %"),
                ("worker_rss_mb", "worker RSS MB"),
                ("simulator_cpu_percent", "router CPU %"),
                ("router_sessions", "router sessions"),
            ],
        )
    )
    for r in rows:
        for note in r.notes:
            print(f"K={r.monitors}: {note}")
    settings: dict[str, Any] = {
        **base_settings(),
        **env,
        "window_seconds": SECONDS,
        "hotspot": hotspot,
        "static": biggest - hotspot,
    }
    path = write_results("queues", rows, settings=settings)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
