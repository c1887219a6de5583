"""Benchmark: the router-wide view beside one monitor per customer (`make bench-router`).

Not a test: nothing here asserts on time. Two deployments (bench/stack.py), one after the
other, each with its own simulator, PostgreSQL schema, Redis, control worker + beat and
web process; the simulator serves BENCH_ROUTER_PPPOE (2,000) PPPoE customers,
BENCH_ROUTER_HOTSPOT (250) hotspot and BENCH_ROUTER_STATIC (250) static-IP ones (the last
two are queue customers), all of them rows in PostgreSQL.

1. The router watch (ROUTER_WATCH=true, ROUTER_WATCH_INTERVAL, default 2 s): two
   identical monitors workers, no monitor started. The reconciler launches the router's
   one watch on one of them (its log says which); the other runs the same code without
   it, so "the watch's memory" is the RSS of the worker holding it minus the other's,
   and its CPU likewise. A WebSocket client (bench/ws_clients.py, its own process)
   reads `/ws?types=top&router=<router>`. Once every customer has a rate, for
   BENCH_SECONDS (120):
   - router commands, per command word, from the simulator's command counts, per second
     and per cycle (a cycle = a top frame in the router's stream);
   - the top frame's delay: from the cycle's last reply (bench/engine_sim.py logs the
     time right before it writes each print's reply: the moment the counters were read)
     to the frame's receipt on the WebSocket, p50/p99 over the window; and to its entry
     in Redis (the stream id's time), which splits it;
   - cycle regularity: top frames per minute against 60 / interval, and the gaps
     between consecutive frames;
   - CPU % (of one core) and RSS of both workers, the web process and the simulator.
2. One monitor per customer (ROUTER_WATCH=false): BENCH_NAIVE_PPPOE (200) PPPoE and
   BENCH_NAIVE_QUEUE (20: half hotspot, half static) monitors started through the REST
   API on one monitors worker, for BENCH_NAIVE_SECONDS (30): router commands per second,
   commands running on the router, the bytes it sends, the worker's and the simulator's
   CPU, the worker's RSS, and the monitors' `reconnecting` / `offline` events (a router
   that does not keep up). Below the full size, each figure is also extrapolated to
   every customer (per-monitor cost times the customers, PPPoE and queue monitors scaled
   apart) and labelled so; with BENCH_NAIVE_PPPOE=2000 BENCH_NAIVE_QUEUE=500 it is
   measured whole. Why only 20 queue monitors: each polls `/queue/simple/print ?name=`
   once a second, and the simulator answers a query by building every queue's row
   (2,500 here, 10-30 ms of its one core each): at 50 polls a second its replies
   already took over the monitors' 1 s timeout, and the churn that follows is not a
   per-monitor cost that scales.

Prints the comparison and the issue's targets beside the measured figures, and writes
bench/results/router.json.
"""

from __future__ import annotations

import bisect
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.engine import EngineBench, dump_records, stats, wait_until
from bench.results import RESULTS_DIR, table, write_results
from bench.stack import Stack, base_settings, interrupt_once, rss_mb, run_main
from harness.seed import ROUTER_ID
from harness.workers import CeleryProcess
from tasks import keys

LOG_DIR = RESULTS_DIR / "router-logs"

PPPOE = int(os.environ.get("BENCH_ROUTER_PPPOE", "2000"))
HOTSPOT = int(os.environ.get("BENCH_ROUTER_HOTSPOT", "250"))
STATIC = int(os.environ.get("BENCH_ROUTER_STATIC", "250"))
INTERVAL = float(os.environ.get("ROUTER_WATCH_INTERVAL", "2"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "120"))
NAIVE_PPPOE = min(PPPOE, int(os.environ.get("BENCH_NAIVE_PPPOE", "200")))
NAIVE_QUEUE = min(HOTSPOT + STATIC, int(os.environ.get("BENCH_NAIVE_QUEUE", "20")))
NAIVE_SECONDS = float(os.environ.get("BENCH_NAIVE_SECONDS", "30"))
SETTLE_CYCLES = 2  # cycles after every customer has a rate, before the window
GRACE = 2.0  # seconds after the window for the last frames to reach the client
WATCH_STARTED = "router watch watch:"  # a worker's log line: "router watch <token> started on <router>"

# The targets (issue 18, Targets): measured here, never asserted.
TARGET_COMMANDS_PER_CYCLE = 3
TARGET_CPU_PERCENT = 10.0
TARGET_MEMORY_MB = 60.0
TARGET_TOP_TO_WS_MS = 1000.0


@dataclass
class WatchRow:
    customers: int
    interval_s: float
    window_s: float = 0.0
    frames: int = 0
    frames_per_min: float = 0.0
    expected_per_min: float = 0.0
    frame_gap_ms: dict[str, float] = field(default_factory=dict)
    online: int = 0
    rated: int = 0
    commands: dict[str, int] = field(default_factory=dict)
    commands_per_s: float = 0.0
    commands_per_cycle: float = 0.0
    router_running_commands: int = 0
    router_kib_per_s: float = 0.0
    simulator_cpu_percent: float = 0.0  # the router's side of the cost, as far as the simulator shows it
    # the cycle's last reply -> the frame in Redis (stream id) and on the WebSocket
    reply_to_stream_ms: dict[str, float] = field(default_factory=dict)
    reply_to_ws_ms: dict[str, float] = field(default_factory=dict)
    frames_on_ws: int = 0
    unmatched_frames: int = 0
    # the worker holding the watch, and the same worker without it
    worker_cpu_percent: float = 0.0
    idle_worker_cpu_percent: float = 0.0
    worker_rss_mb: float = 0.0
    idle_worker_rss_mb: float = 0.0
    watch_rss_mb: float = 0.0
    worker_peak_rss_mb: float = 0.0
    processes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class NaiveRow:
    pppoe_monitors: int
    queue_monitors: int
    window_s: float = 0.0
    started: int = 0
    samples_per_s: float = 0.0
    commands: dict[str, int] = field(default_factory=dict)
    commands_per_s: float = 0.0
    router_running_commands: int = 0
    router_kib_per_s: float = 0.0
    simulator_cpu_percent: float = 0.0
    restarts: int = 0  # streams re-issued and polls timed out: `reconnecting` / `offline` events
    worker_cpu_percent: float = 0.0
    worker_rss_mb: float = 0.0
    # every customer of the router, from the per-monitor costs (= measured at full size)
    scale_pppoe: float = 1.0
    scale_queue: float = 1.0
    full_commands_per_s: float = 0.0
    full_running_commands: int = 0
    full_kib_per_s: float = 0.0
    full_worker_cpu_percent: float = 0.0
    full_worker_rss_mb: float = 0.0
    processes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _id_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _counts_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    diff = Counter(after.get("command_counts", {}))
    diff.subtract(before.get("command_counts", {}))
    return {word: n for word, n in sorted(diff.items()) if n}


def watch_holder(workers: list[CeleryProcess], since: dict[str, int]) -> CeleryProcess | None:
    """The worker whose log, past `since` (its length before: a log file is appended to
    across runs), says the watch started there."""
    for proc in workers:
        if WATCH_STARTED in proc.log()[since.get(proc.name, 0) :]:
            return proc
    return None


def top_frames(
    stack: Stack, lo_ms: int = 0, hi_ms: int | None = None
) -> list[tuple[int, dict[bytes, bytes]]]:
    entries: Any = stack.redis.xrange(
        keys.router_stream(ROUTER_ID), min=lo_ms, max="+" if hi_ms is None else hi_ms
    )
    return [(_id_ms(i), f) for i, f in entries if f.get(b"type") == b"top"]


def all_rated(stack: Stack, total: int) -> bool:
    frames = top_frames(stack)
    return bool(frames) and int(frames[-1][1].get(b"customers", b"0")) >= total


# -- 1. the router watch ------------------------------------------------------------------


def start_watch(
    stack: Stack, workers: int, tag: str, total: int, notes: list[str], interval: float = INTERVAL
) -> tuple[list[CeleryProcess], CeleryProcess]:
    """Start `workers` monitors workers (ROUTER_WATCH on in the stack's env); once the
    reconciler has launched the router's watch on one of them, every customer has a rate
    and SETTLE_CYCLES more cycles went by: (the workers, the one holding the watch)."""
    logs = stack.log_dir.glob(f"bench-mon{tag}-*.log")
    since = {path.stem: len(path.read_text(errors="replace")) for path in logs}
    procs = stack.start_monitors(workers, workers, tag=tag)
    if not wait_until(lambda: watch_holder(procs, since), timeout=60):
        raise RuntimeError("no router watch started within 60 s (see the worker logs)")
    holder = watch_holder(procs, since)
    assert holder is not None
    if not wait_until(lambda: all_rated(stack, total), timeout=60):
        notes.append("no frame with every customer rated within 60 s")
    seen = len(top_frames(stack))
    wait_until(lambda: len(top_frames(stack)) >= seen + SETTLE_CYCLES, timeout=10 * interval)
    return procs, holder


def watch_phase() -> WatchRow:
    total = PPPOE + HOTSPOT + STATIC
    row = WatchRow(customers=total, interval_s=INTERVAL)
    env = {"ROUTER_WATCH": "true", "ROUTER_WATCH_INTERVAL": f"{INTERVAL:g}"}
    with Stack(pppoe=PPPOE, hotspot=HOTSPOT, static=STATIC, log_dir=LOG_DIR / "watch", env=env) as stack:
        clients = stack.ws_clients([{"types": "top", "router": ROUTER_ID}])
        try:
            if clients.ask("ready 30")["connected"] < 1:
                row.notes.append("the WebSocket client did not connect")
            workers, holder = start_watch(stack, 2, "-watch", total, row.notes)
            idle = next(p for p in workers if p is not holder)
            _watch_window(stack, clients, holder, idle, row)
        finally:
            clients.stop()
    return row


def _watch_window(
    stack: Stack, clients: Any, holder: CeleryProcess, idle: CeleryProcess, row: WatchRow
) -> None:
    sim = stack.sim
    dump_records(clients)  # everything before the window
    stats0 = sim.ask("stats")
    sim.ask("replies on")
    t_a, m_a = time.time(), time.monotonic()
    meter = stack.meter()
    while time.monotonic() - m_a < SECONDS:
        time.sleep(min(1.0, max(0.0, SECONDS - (time.monotonic() - m_a))))
    processes = meter.read()
    t_b = time.time()
    replies = sim.ask("replies off")["log"]
    stats1 = sim.ask("stats")
    row.window_s = round(time.monotonic() - m_a, 1)
    row.worker_rss_mb, row.idle_worker_rss_mb = rss_mb(holder.pid), rss_mb(idle.pid)
    row.watch_rss_mb = round(row.worker_rss_mb - row.idle_worker_rss_mb, 1)
    time.sleep(GRACE)
    records = dump_records(clients)

    frames = top_frames(stack, int(t_a * 1000), int(t_b * 1000))
    row.frames = len(frames)
    row.frames_per_min = round(len(frames) * 60 / row.window_s, 1)
    row.expected_per_min = round(60 / INTERVAL, 1)
    row.frame_gap_ms = stats([b[0] - a[0] for a, b in zip(frames, frames[1:])])
    if frames:
        last = frames[-1][1]
        row.online, row.rated = int(last.get(b"online", b"0")), int(last.get(b"customers", b"0"))
    row.commands = _counts_between(stats0, stats1)
    spent = sum(row.commands.values())
    row.commands_per_s = round(spent / row.window_s, 2)
    row.commands_per_cycle = round(spent / max(1, row.frames), 2)
    row.router_running_commands = int(stats1["running_commands"])
    row.router_kib_per_s = round((stats1["bytes_sent"] - stats0["bytes_sent"]) / 1024 / row.window_s, 1)

    # A frame belongs to the print answered last before its stream entry was written.
    answered = sorted(t for _, t in replies)
    to_stream: list[float] = []
    to_ws: list[float] = []
    for r in records:
        if r[2] != "top" or not t_a * 1000 <= _id_ms(r[1]) <= t_b * 1000:
            continue
        row.frames_on_ws += 1
        entry_s = _id_ms(r[1]) / 1000
        i = bisect.bisect_right(answered, entry_s + 0.001) - 1
        if i < 0 or entry_s - answered[i] > INTERVAL:
            row.unmatched_frames += 1
            continue
        to_stream.append(max(0.0, (entry_s - answered[i]) * 1000))
        to_ws.append((r[8] - answered[i]) * 1000)
    row.reply_to_stream_ms = stats(to_stream)
    row.reply_to_ws_ms = stats(to_ws)
    if row.frames_on_ws < row.frames:
        row.notes.append(
            f"{row.frames - row.frames_on_ws} of {row.frames} top frames did not reach the WebSocket"
        )

    by_pid = {p["pid"]: p for p in processes}
    row.simulator_cpu_percent = by_pid[stack.sim.proc.pid]["cpu_percent"]
    row.worker_cpu_percent = by_pid[holder.pid]["cpu_percent"]
    row.worker_peak_rss_mb = by_pid[holder.pid]["peak_rss_mb"]
    row.idle_worker_cpu_percent = by_pid[idle.pid]["cpu_percent"]
    row.processes = [
        {
            **p,
            "process": "watch worker"
            if p["pid"] == holder.pid
            else "idle worker"
            if p["pid"] == idle.pid
            else p["process"],
        }
        for p in processes
    ]


# -- 2. one monitor per customer ----------------------------------------------------------


def naive_phase() -> NaiveRow:
    row = NaiveRow(pppoe_monitors=NAIVE_PPPOE, queue_monitors=NAIVE_QUEUE)
    k = NAIVE_PPPOE + NAIVE_QUEUE
    env = {"ROUTER_WATCH": "false", "MAX_CONCURRENT_MONITORS": str(k)}
    with Stack(pppoe=PPPOE, hotspot=HOTSPOT, static=STATIC, log_dir=LOG_DIR / "naive", env=env) as stack:
        (proc,) = stack.start_monitors(k, 1, tag="-naive")
        hotspot = [c for c in stack.queue_customers if c["service_type"] == "hotspot"]
        static = [c for c in stack.queue_customers if c["service_type"] != "hotspot"]
        half = NAIVE_QUEUE // 2
        queue = (hotspot[: NAIVE_QUEUE - half] + static[:half])[:NAIVE_QUEUE]
        queue += [c for c in stack.queue_customers if c not in queue][: NAIVE_QUEUE - len(queue)]
        ids = [c["id"] for c in stack.customers[:NAIVE_PPPOE]] + [c["id"] for c in queue]
        started = EngineBench(stack).start_many(ids)
        row.started = sum(1 for sid, _, _ in started.values() if sid)
        if row.started < k:
            row.notes.append(f"only {row.started} of {k} monitors started")
        from tasks import runtime

        sem = runtime.current().semaphore
        if not wait_until(lambda: sem.in_use() >= row.started, timeout=60 + k / 20):
            row.notes.append(f"only {sem.in_use()} of {row.started} monitors running after the wait")
        time.sleep(5.0)  # past every monitor's first sample
        _naive_window(stack, proc, row)
    return row


def _naive_window(stack: Stack, proc: CeleryProcess, row: NaiveRow) -> None:
    sim = stack.sim
    stats0 = sim.ask("stats")
    t_a, m_a = time.time(), time.monotonic()
    meter = stack.meter()
    time.sleep(NAIVE_SECONDS)
    processes = meter.read()
    t_b = time.time()
    stats1 = sim.ask("stats")
    row.window_s = round(time.monotonic() - m_a, 1)
    row.worker_rss_mb = rss_mb(proc.pid)
    row.processes = processes
    by_pid = {p["pid"]: p for p in processes}
    row.worker_cpu_percent = by_pid[proc.pid]["cpu_percent"]
    row.simulator_cpu_percent = by_pid[stack.sim.proc.pid]["cpu_percent"]
    row.commands = _counts_between(stats0, stats1)
    row.commands_per_s = round(sum(row.commands.values()) / row.window_s, 1)
    row.router_running_commands = int(stats1["running_commands"])
    row.router_kib_per_s = round((stats1["bytes_sent"] - stats0["bytes_sent"]) / 1024 / row.window_s, 1)
    traffic = 0
    entries: Any = stack.redis.xrange(keys.COMBINED_STREAM, min=int(t_a * 1000), max=int(t_b * 1000))
    for _, fields in entries:
        kind = fields.get(b"type")
        traffic += kind == b"traffic"
        row.restarts += kind in (b"reconnecting", b"offline")
    row.samples_per_s = round(traffic / row.window_s, 1)
    expected = row.pppoe_monitors + row.queue_monitors
    if row.samples_per_s < 0.95 * expected or row.restarts:
        row.notes.append(
            f"one monitor per customer: {row.samples_per_s} samples/s of {expected}, {row.restarts}"
            " reconnecting/offline events in the window (the router, or this machine, did not keep up)"
        )


def extrapolate(row: NaiveRow, idle_worker_cpu: float, idle_worker_rss: float) -> None:
    """Every customer of the router, from the per-monitor costs: queue monitors' polls and
    PPPoE monitors' streams scaled apart; CPU and RSS above an idle worker's, per monitor."""
    row.scale_pppoe = PPPOE / row.pppoe_monitors if row.pppoe_monitors else 0.0
    row.scale_queue = (HOTSPOT + STATIC) / row.queue_monitors if row.queue_monitors else 0.0
    queue_polls = row.commands.get("/queue/simple/print", 0)
    others = sum(row.commands.values()) - queue_polls
    row.full_commands_per_s = round(
        (queue_polls * row.scale_queue + others * row.scale_pppoe) / max(row.window_s, 1e-6), 1
    )
    row.full_running_commands = round(row.router_running_commands * row.scale_pppoe)
    monitors = row.pppoe_monitors + row.queue_monitors
    scale = (PPPOE + HOTSPOT + STATIC) / monitors if monitors else 0.0
    row.full_kib_per_s = round(row.router_kib_per_s * scale, 1)
    row.full_worker_cpu_percent = round(
        idle_worker_cpu + max(0.0, row.worker_cpu_percent - idle_worker_cpu) * scale, 1
    )
    row.full_worker_rss_mb = round(idle_worker_rss + max(0.0, row.worker_rss_mb - idle_worker_rss) * scale, 1)


# -- output -------------------------------------------------------------------------------


def comparison(watch: WatchRow, naive: NaiveRow) -> list[dict[str, Any]]:
    k = naive.pppoe_monitors + naive.queue_monitors
    whole = naive.scale_pppoe == 1.0 and naive.scale_queue == 1.0
    rows = [
        {
            "way": "router watch (1 task)",
            "customers": f"{watch.rated} rated, {watch.online} online",
            "commands/s": watch.commands_per_s,
            "commands/cycle": watch.commands_per_cycle,
            "running on router": watch.router_running_commands,
            "router KiB/s": watch.router_kib_per_s,
            "simulator CPU %": watch.simulator_cpu_percent,
            "worker CPU %": f"{watch.worker_cpu_percent} (idle {watch.idle_worker_cpu_percent})",
            "worker RSS MB": f"{watch.worker_rss_mb} (watch {watch.watch_rss_mb})",
        },
        {
            "way": f"1 monitor per customer, {k} measured",
            "customers": f"{naive.pppoe_monitors} PPPoE + {naive.queue_monitors} queue",
            "commands/s": naive.commands_per_s,
            "commands/cycle": "",
            "running on router": naive.router_running_commands,
            "router KiB/s": naive.router_kib_per_s,
            "simulator CPU %": naive.simulator_cpu_percent,
            "worker CPU %": naive.worker_cpu_percent,
            "worker RSS MB": naive.worker_rss_mb,
        },
    ]
    if not whole:
        rows.append(
            {
                "way": f"1 monitor per customer, x{naive.scale_pppoe:g}/x{naive.scale_queue:g} extrapolated",
                "customers": f"{PPPOE} PPPoE + {HOTSPOT + STATIC} queue",
                "commands/s": naive.full_commands_per_s,
                "commands/cycle": "",
                "running on router": naive.full_running_commands,
                "router KiB/s": naive.full_kib_per_s,
                "simulator CPU %": "",
                "worker CPU %": naive.full_worker_cpu_percent,
                "worker RSS MB": naive.full_worker_rss_mb,
            }
        )
    full_cmds = naive.commands_per_s if whole else naive.full_commands_per_s
    full_cpu = naive.worker_cpu_percent if whole else naive.full_worker_cpu_percent
    rows.append(
        {
            "way": "ratio (per customer way / watch)",
            "customers": "",
            "commands/s": _ratio(full_cmds, watch.commands_per_s),
            "commands/cycle": "",
            "running on router": _ratio(
                naive.router_running_commands if whole else naive.full_running_commands,
                watch.router_running_commands,
            ),
            "router KiB/s": _ratio(
                naive.router_kib_per_s if whole else naive.full_kib_per_s, watch.router_kib_per_s
            ),
            "simulator CPU %": "",
            "worker CPU %": _ratio(full_cpu, watch.worker_cpu_percent),
            "worker RSS MB": "",
        }
    )
    return rows


def _ratio(a: float, b: float) -> str:
    if b <= 0:
        return "n/a"
    return f"{a / b:.1f}x" if a / b < 10 else f"{a / b:.0f}x"


def targets(watch: WatchRow) -> list[dict[str, Any]]:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    p99 = watch.reply_to_ws_ms.get("p99", float("nan"))
    return [
        {
            "figure": "router commands per cycle",
            "target": f"<= {TARGET_COMMANDS_PER_CYCLE}",
            "measured": watch.commands_per_cycle,
            "": met(watch.commands_per_cycle <= TARGET_COMMANDS_PER_CYCLE),
        },
        {
            "figure": "refresh (top frames per minute)",
            "target": f"every {INTERVAL:g} s = {60 / INTERVAL:g}/min",
            "measured": f"{watch.frames_per_min} (gap p99 {watch.frame_gap_ms.get('p99')} ms)",
            "": met(watch.frames_per_min >= 0.95 * 60 / INTERVAL),
        },
        {
            "figure": "watch CPU, % of one core (its worker)",
            "target": f"<= {TARGET_CPU_PERCENT:g}",
            "measured": f"{watch.worker_cpu_percent} (same worker idle: {watch.idle_worker_cpu_percent})",
            "": met(watch.worker_cpu_percent <= TARGET_CPU_PERCENT),
        },
        {
            "figure": "watch memory MB (worker RSS - idle worker's)",
            "target": f"<= {TARGET_MEMORY_MB:g}",
            "measured": watch.watch_rss_mb,
            "": met(watch.watch_rss_mb <= TARGET_MEMORY_MB),
        },
        {
            "figure": "last reply -> top frame on /ws, p50 / p99 ms",
            "target": f"<= {TARGET_TOP_TO_WS_MS:g}",
            "measured": f"{watch.reply_to_ws_ms.get('p50')} / {p99}",
            "": met(p99 <= TARGET_TOP_TO_WS_MS),
        },
    ]


def main() -> int:
    threading.stack_size(512 * 1024)
    with interrupt_once():
        watch = watch_phase()
        print("router watch done", file=sys.stderr, flush=True)
        naive = naive_phase()
        print("one monitor per customer done", file=sys.stderr, flush=True)
    extrapolate(naive, watch.idle_worker_cpu_percent, watch.idle_worker_rss_mb)
    rows = comparison(watch, naive)
    print(table(rows, [(k, k) for k in rows[0]]))
    print()
    goals = targets(watch)
    print(table(goals, [(k, k) for k in goals[0]]))
    print()
    per_cycle = ", ".join(f"{w} {n / max(1, watch.frames):.2f}" for w, n in watch.commands.items())
    stream, gaps = watch.reply_to_stream_ms, watch.frame_gap_ms
    print(f"the watch's cycle: {per_cycle} per cycle")
    print(f"last reply -> the frame in Redis, p50 / p99 ms: {stream.get('p50')} / {stream.get('p99')}")
    print(
        f"gaps between frames, p50 / p99 / max ms: {gaps.get('p50')} / {gaps.get('p99')} / {gaps.get('max')}"
    )
    for note in watch.notes + naive.notes:
        print(f"note: {note}")
    settings: dict[str, Any] = {
        **base_settings(),
        "pppoe": PPPOE,
        "hotspot": HOTSPOT,
        "static": STATIC,
        "router_watch_interval": INTERVAL,
        "window_seconds": SECONDS,
        "naive_pppoe": NAIVE_PPPOE,
        "naive_queue": NAIVE_QUEUE,
        "naive_window_seconds": NAIVE_SECONDS,
    }
    path = write_results("router", [watch, naive], settings=settings, comparison=rows, targets=goals)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
