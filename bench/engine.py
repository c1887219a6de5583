"""Benchmark: the whole monitoring engine at K concurrent monitors (`make bench`).

Not a test: nothing here asserts on time. For each size in BENCH_SIZES (default
100,500,1000,2000; a token is K, or KxW for W monitors workers; plain K gets
ceil(K / BENCH_MONITORS_PER_WORKER=1000) workers) it
1. starts fresh monitors workers (`celery -A tasks worker -Q monitors -P threads
   -c K/W+25% --disable-prefetch`, as deployed) next to a control worker and beat,
2. starts K PPPoE customers through tasks.service.start from BENCH_START_THREADS (16)
   threads, at most BENCH_START_RATE per second if set ("burst" start numbers and
   "ramp s": until every session's first sample is in its stream),
3. waits 3 s, then measures BENCH_SECONDS (default 20) of steady state: samples
   delivered, lost, duplicated, router-to-stream latency, worker RSS/CPU, router-side
   sessions and commands, Redis memory,
4. with the K still running, starts BENCH_PROBES (20) more customers one at a time
   (start latency: start() call -> stream id time of the session's first traffic
   entry) and stops them one at a time (stop latency: stop() call -> stream id time
   of `stopped`): what one operator action costs at load K,
5. stops all K at once through tasks.service.stop ("burst" stop numbers), checks
   that every slot, router command, router session and open session row is given
   back, then stops the workers.

Router-to-stream latency: the simulator (bench/engine_sim.py, a separate process)
logs the wall-clock time right before it writes each cycle of monitor-traffic
samples to its socket; every traffic entry is matched to that sample by (interface,
rx-bits-per-second, tx-bits-per-second) and its latency is the entry's stream id
time (Redis server clock, ms, floored) minus the send time. Same host, same clock.
It covers: router socket -> RouterClient reader -> stream queue -> monitor thread ->
enrich -> fenced Lua XADD. It does not cover a WebSocket hop (no web layer yet).
A sample the router sent inside the window with no matching entry within
GRACE seconds after the window counts as lost; `seq gaps` are holes in a session's
seq inside the window; `silent` sessions have no sample in the window at all.

Everything runs against real services: PostgreSQL (a throw-away migrated schema,
tests/pg.py), Redis database BENCH_REDIS_DB (default 11; flushed before and
after), Celery subprocesses (tests/workers.py). Every process and the schema are
cleaned up on failure and Ctrl-C. Worker logs stay in bench/results/engine-logs/.

Prints one table and writes the same rows (with more columns) to
bench/results/engine.json.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.sim_process import SimProcess, cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "engine.json"
LOG_DIR = ROOT / "bench" / "results" / "engine-logs"

PER_WORKER = int(os.environ.get("BENCH_MONITORS_PER_WORKER", "1000"))


def _size(token: str) -> tuple[int, int]:
    """ "K" (ceil(K / BENCH_MONITORS_PER_WORKER) monitors workers) or "KxW" (W workers)."""
    k, _, w = token.strip().partition("x")
    return int(k), int(w) if w else max(1, math.ceil(int(k) / PER_WORKER))


SIZES = [_size(t) for t in os.environ.get("BENCH_SIZES", "100,500,1000,2000").split(",") if t.strip()]
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
REDIS_URL = os.environ.get(
    "BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{os.environ.get('BENCH_REDIS_DB', '11')}"
)
START_THREADS = int(os.environ.get("BENCH_START_THREADS", "16"))
PROBES = int(os.environ.get("BENCH_PROBES", "20"))
# Starts per second for the K starts (0 = as fast as BENCH_START_THREADS go): a paced
# ramp separates what K monitors cost at steady state from the cost of starting them.
START_RATE = float(os.environ.get("BENCH_START_RATE", "0"))
SETTLE = 3.0  # seconds between the last first-sample and the window
GRACE = 2.5  # seconds after the window for in-flight samples to reach the stream
PROBE_WAIT = 5.0  # a probe slower than this is reported (note) and left out of the stats
PASSWORD_VAR = "BENCH_ROUTER_PASSWORD"

# Every process (this one enqueues, the workers, beat) must carry the same values;
# celeryconfig reads them at the first `import tasks`, so they are set before it.
os.environ["TEST_REDIS_URL"] = REDIS_URL  # tests.services / tests.tasks.conftest read it
COMMON_ENV = {
    "REDIS_URL": REDIS_URL,
    "CELERY_VISIBILITY_TIMEOUT": "43200",
    "RECONCILE_INTERVAL": "5",
    "MONITOR_LEASE_TTL": "30",
    "MONITOR_RENEW_INTERVAL": "5",
    "MONITOR_INTERVAL": "1",
    "MONITOR_MAX_DURATION": "14400",
    "MIKROTIK_TIMEOUT": "10",
    "ROUTER_CONNECTIONS_PER_PROCESS": "1",
    "MAX_CONCURRENT_MONITORS": str(max([k for k, _ in SIZES] or [1]) + PROBES),
    "ENABLE_TRAFFIC_MONITOR": "true",
    "ENV_FILE": "/nonexistent/.env",
}


@dataclass
class Row:
    monitors: int
    workers: int
    window_s: float
    samples_per_s: float
    expected_per_s: float
    router_sent: int
    lost: int
    seq_gaps: int
    silent_sessions: int
    duplicates: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    router_to_monitor_p99_ms: float
    monitor_to_stream_p99_ms: float
    start_p50_ms: float
    start_p99_ms: float
    start_max_ms: float
    start_all_s: float
    start_failures: int
    stop_p50_ms: float
    stop_p99_ms: float
    stop_max_ms: float
    worker_rss_mb: float
    worker_threads: int
    worker_cpu_percent: float
    sim_cpu_percent: float
    router_sessions: int
    router_running_commands: int
    router_skipped_cycles: int
    redis_used_mb: float
    streams_mb: float
    status_events_in_window: int
    slots_in_use_after_stop: int
    open_sessions_after_stop: int
    router_sessions_after_stop: int
    router_commands_after_stop: int
    burst_start_call_p50_ms: float = 0.0  # the start() call itself
    burst_start_call_p99_ms: float = 0.0
    burst_to_started_p50_ms: float = 0.0  # start() call -> `started` event
    burst_to_started_p99_ms: float = 0.0
    burst_started_to_sample_p50_ms: float = 0.0  # `started` -> first traffic entry
    burst_started_to_sample_p99_ms: float = 0.0
    burst_stop_call_p50_ms: float = 0.0
    burst_stop_call_p99_ms: float = 0.0
    burst_start_p50_ms: float = 0.0  # the K starts at once: start() -> first sample
    burst_start_p99_ms: float = 0.0
    burst_start_max_ms: float = 0.0
    burst_stop_p50_ms: float = 0.0  # the K stops at once: stop() -> `stopped`
    burst_stop_p99_ms: float = 0.0
    burst_stop_max_ms: float = 0.0
    notes: list[str] = field(default_factory=list)


# -- the simulator child ------------------------------------------------------------------


def start_sim(pppoe: int, password: str) -> SimProcess:
    return SimProcess(
        "bench.engine_sim",
        ["--pppoe", str(pppoe), "--password-env", PASSWORD_VAR],
        env={**os.environ, PASSWORD_VAR: password},
    )


# -- small helpers ------------------------------------------------------------------------


def _rss_and_threads(pid: int) -> tuple[int, int]:
    import psutil

    proc = psutil.Process(pid)
    rss = threads = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss += p.memory_info().rss
            threads += p.num_threads()
        except psutil.NoSuchProcess:
            pass
    return rss, threads


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


def _id_ms(stream_id: bytes | str) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(text.split("-", 1)[0])


def _field(fields: dict[bytes, bytes], name: bytes) -> str:
    value = fields.get(name)
    return value.decode() if value is not None else ""


def _wait(condition: Callable[[], Any], timeout: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


@contextmanager
def _interrupt_once() -> Iterator[None]:
    """SIGTERM or Ctrl-C interrupts once; a second one must not cut the clean-up short."""

    def handler(*_: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


# -- one size -----------------------------------------------------------------------------


class Bench:
    def __init__(
        self, env: dict[str, str], sim: SimProcess, customers: list[dict[str, Any]], redis_client: Any
    ) -> None:
        self.env = env
        self.sim = sim
        self.customers = customers  # PPPoE customers, each with "id" and "target"
        self.redis = redis_client

    def find_first(
        self, wanted: dict[str, tuple[str, float]], kinds: tuple[str, ...], timeout: float
    ) -> dict[str, dict[str, int]]:
        """customer_id -> {kind: XADD ms of the session's first entry of that kind after its call}.

        Done once all `kinds[-1]` are found (the last kind is the one waited for)."""
        from tasks.keys import customer_stream

        found: dict[str, dict[str, int]] = defaultdict(dict)
        last = kinds[-1]
        deadline = time.monotonic() + timeout
        while True:
            todo = [c for c in wanted if last not in found[c]]
            if not todo or time.monotonic() >= deadline:
                return {c: v for c, v in found.items() if last in v}
            for i in range(0, len(todo), 500):
                chunk = todo[i : i + 500]
                pipe = self.redis.pipeline(transaction=False)
                for cid in chunk:
                    pipe.xrange(customer_stream(cid), min=int(wanted[cid][1] * 1000), count=50)
                for cid, entries in zip(chunk, pipe.execute()):
                    for entry_id, fields in entries:
                        kind = _field(fields, b"type")
                        if (
                            kind in kinds
                            and kind not in found[cid]
                            and _field(fields, b"session_id") == wanted[cid][0]
                        ):
                            found[cid][kind] = _id_ms(entry_id)
            time.sleep(0.5)

    def run(self, k: int, workers: int) -> Row:
        from harness.workers import worker
        from tasks import runtime, service, sessions

        notes: list[str] = []
        chosen = self.customers[:k]
        by_id = {c["id"]: c for c in chosen}
        # README sizing: 1.25 x the monitors, plus room for the probes.
        share = math.ceil(k / workers)
        concurrency = share + max(PROBES + 8, share // 4)
        procs = [
            worker(
                self.env,
                LOG_DIR,
                queues="monitors",
                concurrency=concurrency,
                name=f"bench-monitors-{k}x{workers}-{i}",
            )
            for i in range(workers)
        ]
        try:
            for proc in procs:
                proc.start()
            for proc in procs:
                proc.wait_ready(timeout=60)
            # -- start ----------------------------------------------------------------
            start_call_ms: list[float] = []
            stop_call_ms: list[float] = []

            ramp_t0 = time.monotonic()

            def start_one(item: tuple[int, dict[str, Any]]) -> tuple[str, str | None, float, str | None]:
                index, customer = item
                if START_RATE > 0:
                    time.sleep(max(0.0, ramp_t0 + index / START_RATE - time.monotonic()))
                called = time.time()
                try:
                    info = service.start(customer["id"], requested_by="bench")
                    start_call_ms.append((time.time() - called) * 1000)
                    return customer["id"], info.session_id, called, None
                except Exception as exc:  # reported, never raised: a bench shows failures
                    return customer["id"], None, called, f"{type(exc).__name__}: {exc}"

            t0 = time.monotonic()
            with ThreadPoolExecutor(START_THREADS) as pool:
                started = list(pool.map(start_one, enumerate(chosen)))
            start_calls_s = time.monotonic() - t0
            failures = [s for s in started if s[1] is None]
            for _, _, _, error in failures[:3]:
                notes.append(f"start failed: {error}")
            sessions_of = {cid: (sid, called) for cid, sid, called, _ in started if sid}
            first = self.find_first(sessions_of, ("started", "traffic"), timeout=60 + k / 20)
            start_all_s = time.monotonic() - t0
            start_lat = [first[c]["traffic"] - sessions_of[c][1] * 1000 for c in first]
            # Where start time goes: until the task says `started` (enqueue, pickup,
            # reservation), then until its first sample (hub, stream, first publish).
            to_started = [
                first[c]["started"] - sessions_of[c][1] * 1000 for c in first if "started" in first[c]
            ]
            started_to_first = [
                first[c]["traffic"] - first[c]["started"] for c in first if "started" in first[c]
            ]
            if len(first) < len(sessions_of):
                notes.append(f"{len(sessions_of) - len(first)} sessions without a first sample")
            print(
                f"K={k}: {len(first)}/{k} started in {start_all_s:.1f}s (start() calls {start_calls_s:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(SETTLE)

            # -- steady state -----------------------------------------------------------
            row = self.steady(k, [p.pid for p in procs], sessions_of, by_id, notes)
            probe_start, probe_stop = self.probe(self.customers[k : k + PROBES], notes)

            # -- stop -------------------------------------------------------------------
            def stop_one(cid: str) -> tuple[str, float, str | None]:
                called = time.time()
                try:
                    service.stop(cid, requested_by="bench")
                    stop_call_ms.append((time.time() - called) * 1000)
                    return cid, called, None
                except Exception as exc:
                    return cid, called, f"{type(exc).__name__}: {exc}"

            with ThreadPoolExecutor(START_THREADS) as pool:
                stopped = list(pool.map(stop_one, list(sessions_of)))
            for _, _, error in [s for s in stopped if s[2]][:3]:
                notes.append(f"stop failed: {error}")
            stop_wanted = {cid: (sessions_of[cid][0], called) for cid, called, _ in stopped}
            stop_seen = self.find_first(stop_wanted, ("stopped",), timeout=30)
            stop_lat = [stop_seen[c]["stopped"] - stop_wanted[c][1] * 1000 for c in stop_seen]
            if len(stop_seen) < len(stop_wanted):
                notes.append(f"{len(stop_wanted) - len(stop_seen)} sessions without `stopped`")
            sem = runtime.current().semaphore
            _wait(lambda: sem.in_use() == 0, timeout=30)
            _wait(
                lambda: (
                    self.sim.ask("stats")["running_commands"] == 0
                    and self.sim.ask("stats")["open_sessions"] == 0
                ),
                timeout=15,
            )
            router_after = self.sim.ask("stats")
            with sessions.db() as s:
                from sqlalchemy import func, select

                from models import DesiredState, MonitorSession

                still_open = s.scalar(
                    select(func.count())
                    .select_from(MonitorSession)
                    .where(MonitorSession.desired_state == DesiredState.RUNNING)
                )
            row.start_p50_ms = _pct(probe_start, 50)
            row.start_p99_ms = _pct(probe_start, 99)
            row.start_max_ms = _pct(probe_start, 100)
            row.stop_p50_ms = _pct(probe_stop, 50)
            row.stop_p99_ms = _pct(probe_stop, 99)
            row.stop_max_ms = _pct(probe_stop, 100)
            row.burst_start_p50_ms = _pct(start_lat, 50)
            row.burst_start_p99_ms = _pct(start_lat, 99)
            row.burst_start_max_ms = _pct(start_lat, 100)
            row.start_all_s = round(start_all_s, 1)
            row.burst_start_call_p50_ms = _pct(start_call_ms, 50)
            row.burst_start_call_p99_ms = _pct(start_call_ms, 99)
            row.burst_to_started_p50_ms = _pct(to_started, 50)
            row.burst_to_started_p99_ms = _pct(to_started, 99)
            row.burst_started_to_sample_p50_ms = _pct(started_to_first, 50)
            row.burst_started_to_sample_p99_ms = _pct(started_to_first, 99)
            row.burst_stop_call_p50_ms = _pct(stop_call_ms, 50)
            row.burst_stop_call_p99_ms = _pct(stop_call_ms, 99)
            row.start_failures = len(failures) + (len(sessions_of) - len(first))
            row.burst_stop_p50_ms = _pct(stop_lat, 50)
            row.burst_stop_p99_ms = _pct(stop_lat, 99)
            row.burst_stop_max_ms = _pct(stop_lat, 100)
            row.slots_in_use_after_stop = sem.in_use()
            row.open_sessions_after_stop = int(still_open or 0)
            row.router_sessions_after_stop = router_after["open_sessions"]
            row.router_commands_after_stop = router_after["running_commands"]
            return row
        finally:
            # Leftover sessions (after a failure) die with the schema and the Redis flush.
            for proc in procs:
                proc.stop(timeout=30)
            self._clear_streams()

    def steady(
        self,
        k: int,
        pids: list[int],
        sessions_of: dict[str, tuple[str, float]],
        by_id: dict[str, dict[str, Any]],
        notes: list[str],
    ) -> Row:
        from tasks.keys import COMBINED_STREAM, customer_stream

        sim = self.sim
        stats0 = sim.ask("stats")
        # Before recording starts: every recorded send, hence its entry, is after t_a.
        t_a, m_a = time.time(), time.monotonic()
        sim.ask("record on")
        cpu0, sim_cpu0 = sum(map(cpu_seconds, pids)), sim.cpu_seconds()
        rss_max = threads_max = 0
        stats_mid: dict[str, Any] = {}
        while time.monotonic() - m_a < SECONDS:
            per_worker = [_rss_and_threads(pid) for pid in pids]
            rss, threads = sum(r for r, _ in per_worker), sum(t for _, t in per_worker)
            rss_max, threads_max = max(rss_max, rss), max(threads_max, threads)
            if not stats_mid and time.monotonic() - m_a >= SECONDS / 2:
                stats_mid = sim.ask("stats")
            time.sleep(min(1.0, max(0.0, SECONDS - (time.monotonic() - m_a))))
        t_b, m_b = time.time(), time.monotonic()
        cpu1, sim_cpu1 = sum(map(cpu_seconds, pids)), sim.cpu_seconds()
        sent = sim.ask("record off")["log"]
        stats1 = sim.ask("stats")
        wall = m_b - m_a
        info = self.redis.info("memory")
        pipe = self.redis.pipeline(transaction=False)
        pipe.memory_usage(COMBINED_STREAM)
        for cid in sessions_of:
            pipe.memory_usage(customer_stream(cid))
        streams_bytes = sum(v or 0 for v in pipe.execute())
        time.sleep(GRACE)

        # Every entry of this run's sessions from the window (+ grace), oldest first.
        session_ids = {sid: cid for cid, (sid, _) in sessions_of.items()}
        entries: dict[str, list[tuple[int, dict[bytes, bytes]]]] = defaultdict(list)
        lo, hi = int(t_a * 1000), int((t_b + GRACE) * 1000)
        cursor: str | int = lo
        while True:
            batch = self.redis.xrange(COMBINED_STREAM, min=cursor, max=hi, count=5000)
            for entry_id, fields in batch:
                sid = _field(fields, b"session_id")
                if sid in session_ids:
                    entries[sid].append((_id_ms(entry_id), fields))
            if len(batch) < 5000:
                break
            cursor = "(" + batch[-1][0].decode()

        # Router sends per interface: (rx, tx) -> send times, oldest first.
        sends: dict[str, dict[tuple[str, str], deque[float]]] = defaultdict(lambda: defaultdict(deque))
        for name, rx, tx, t in sent:
            sends[name][(str(rx), str(tx))].append(t)
        latencies: list[float] = []
        to_monitor: list[float] = []
        to_stream: list[float] = []
        duplicates = seq_gaps = silent = status_events = delivered = 0
        t_b_ms = t_b * 1000
        for cid, (sid, _) in sessions_of.items():
            iface = by_id[cid]["target"]
            pending = sends.get(iface, {})
            consumed: set[tuple[str, str]] = set()
            seqs: list[int] = []
            traffic_in_window = 0
            for xadd_ms, fields in entries.get(sid, []):
                seqs.append(int(_field(fields, b"seq") or -1))
                if _field(fields, b"type") != "traffic":
                    if xadd_ms <= t_b_ms:
                        status_events += 1
                    continue
                if xadd_ms <= t_b_ms:
                    traffic_in_window += 1
                key = (_field(fields, b"rx_bits_per_second"), _field(fields, b"tx_bits_per_second"))
                times = pending.get(key)
                if times and times[0] <= xadd_ms / 1000 + 0.001:
                    sent_at = times.popleft()
                    consumed.add(key)
                    latencies.append(xadd_ms - sent_at * 1000)
                    stamped = _parse_ts(_field(fields, b"timestamp"))
                    to_monitor.append(stamped * 1000 - sent_at * 1000)
                    to_stream.append(xadd_ms - stamped * 1000)
                elif key in consumed and xadd_ms <= t_b_ms:
                    # Only inside the window: after it the router's sends are no longer
                    # logged, and a router may send one second's values twice (two ticks
                    # in one second), which would look like a duplicate here.
                    duplicates += 1
                    if duplicates <= 3:
                        notes.append(
                            f"duplicate: {iface} seq {_field(fields, b'seq')} "
                            f"rx/tx {key} at window+{xadd_ms / 1000 - t_a:.3f}s"
                        )
                # else: a sample sent before the window opened
            delivered += traffic_in_window
            if traffic_in_window == 0:
                silent += 1
            if len(seqs) != len(set(seqs)):
                duplicates += len(seqs) - len(set(seqs))
                notes.append(f"duplicate seq in {iface}: {sorted(seqs)}")
            ordered = sorted(set(seqs))
            seq_gaps += sum(b - a - 1 for a, b in zip(ordered, ordered[1:]))
        monitored = {by_id[cid]["target"] for cid in sessions_of}
        router_sent = sum(1 for name, *_ in sent if name in monitored)
        unmatched = sorted(
            (t, name) for name in monitored for times in sends.get(name, {}).values() for t in times
        )
        lost = len(unmatched)
        if os.environ.get("BENCH_DEBUG"):
            lost_names = {name for _, name in unmatched}
            dump = {}
            for cid, (sid, _) in sessions_of.items():
                name = by_id[cid]["target"]
                if name in lost_names:
                    dump[name] = {
                        "sent": [(rx, tx, round(t - t_a, 3)) for n, rx, tx, t in sent if n == name],
                        "entries": [
                            (
                                round(ms / 1000 - t_a, 3),
                                {
                                    k.decode(): v.decode()
                                    for k, v in f.items()
                                    if k
                                    in (
                                        b"type",
                                        b"seq",
                                        b"rx_bits_per_second",
                                        b"tx_bits_per_second",
                                        b"timestamp",
                                        b"reason",
                                    )
                                },
                            )
                            for ms, f in entries.get(sid, [])
                        ],
                    }
            (LOG_DIR / f"lost-{k}.json").write_text(json.dumps(dump, indent=1))
        for t, name in unmatched[:3]:
            notes.append(f"lost: {name} sent at window+{t - t_a:.3f}s (window {wall:.1f}s)")
        stats = stats_mid or stats1
        return Row(
            monitors=k,
            workers=len(pids),
            window_s=round(wall, 1),
            samples_per_s=round(delivered / wall, 1),
            expected_per_s=float(len(sessions_of)),
            router_sent=router_sent,
            lost=lost,
            seq_gaps=seq_gaps,
            silent_sessions=silent,
            duplicates=duplicates,
            latency_p50_ms=_pct(latencies, 50),
            latency_p99_ms=_pct(latencies, 99),
            latency_max_ms=_pct(latencies, 100),
            router_to_monitor_p99_ms=_pct(to_monitor, 99),
            monitor_to_stream_p99_ms=_pct(to_stream, 99),
            start_p50_ms=0,
            start_p99_ms=0,
            start_max_ms=0,
            start_all_s=0,
            start_failures=0,
            stop_p50_ms=0,
            stop_p99_ms=0,
            stop_max_ms=0,
            worker_rss_mb=round(rss_max / 2**20, 1),
            worker_threads=threads_max,
            worker_cpu_percent=round((cpu1 - cpu0) / wall * 100, 1),
            sim_cpu_percent=round((sim_cpu1 - sim_cpu0) / wall * 100, 1),
            router_sessions=stats["open_sessions"],
            router_running_commands=stats["running_commands"],
            router_skipped_cycles=stats1["skipped_cycles"] - stats0["skipped_cycles"],
            redis_used_mb=round(info["used_memory"] / 2**20, 1),
            streams_mb=round(streams_bytes / 2**20, 1),
            status_events_in_window=status_events,
            slots_in_use_after_stop=-1,
            open_sessions_after_stop=-1,
            router_sessions_after_stop=-1,
            router_commands_after_stop=-1,
            notes=notes,
        )

    def probe(self, extra: list[dict[str, Any]], notes: list[str]) -> tuple[list[float], list[float]]:
        """With the K monitors running: start PROBES more customers one at a time (start()
        call -> XADD time of the first traffic entry), then stop them one at a time
        (stop() call -> XADD time of `stopped`). What one operator click costs at load K."""
        from tasks import service
        from tasks.keys import customer_stream

        def wait_entry(cid: str, session_id: str, kind: str, called: float) -> float | None:
            deadline = time.monotonic() + PROBE_WAIT
            while time.monotonic() < deadline:
                for entry_id, fields in self.redis.xrange(
                    customer_stream(cid), min=int(called * 1000), count=50
                ):
                    if _field(fields, b"type") == kind and _field(fields, b"session_id") == session_id:
                        return _id_ms(entry_id) - called * 1000
                time.sleep(0.02)
            notes.append(f"probe: no {kind} for {cid} within {PROBE_WAIT:g} s")
            return None

        started: list[tuple[str, str]] = []
        start_ms: list[float] = []
        stop_ms: list[float] = []
        for customer in extra:
            called = time.time()
            session_id = service.start(customer["id"], requested_by="bench-probe").session_id
            started.append((customer["id"], session_id))
            latency = wait_entry(customer["id"], session_id, "traffic", called)
            if latency is not None:
                start_ms.append(latency)
        for cid, session_id in started:
            called = time.time()
            service.stop(cid, requested_by="bench-probe")
            latency = wait_entry(cid, session_id, "stopped", called)
            if latency is not None:
                stop_ms.append(latency)
        return start_ms, stop_ms

    def _clear_streams(self) -> None:
        """Drop this size's streams and stop keys (never the Celery keys: workers still run)."""
        for pattern in ("mikrotik:traffic:*", "mikrotik:monitor:session:*"):
            batch = list(self.redis.scan_iter(match=pattern, count=1000))
            for i in range(0, len(batch), 500):
                self.redis.delete(*batch[i : i + 500])


def _parse_ts(value: str) -> float:
    from harness.seed import parse_ts

    return parse_ts(value)


# -- output -------------------------------------------------------------------------------

COLUMNS = [
    ("monitors", "K"),
    ("workers", "workers"),
    ("samples_per_s", "samples/s"),
    ("expected_per_s", "expected/s"),
    ("lost", "lost"),
    ("seq_gaps", "seq gaps"),
    ("silent_sessions", "silent"),
    ("duplicates", "dup"),
    ("latency_p50_ms", "lat p50 ms"),
    ("latency_p99_ms", "lat p99 ms"),
    ("latency_max_ms", "lat max ms"),
    ("start_p50_ms", "start p50 ms"),
    ("start_p99_ms", "start p99 ms"),
    ("stop_p50_ms", "stop p50 ms"),
    ("stop_p99_ms", "stop p99 ms"),
    ("start_all_s", "ramp s"),
    ("worker_rss_mb", "RSS MB"),
    ("worker_cpu_percent", "worker CPU%"),
    ("router_sessions", "router sess"),
    ("router_running_commands", "router cmds"),
    ("redis_used_mb", "redis MB"),
    ("slots_in_use_after_stop", "slots after stop"),
]


def print_table(rows: list[Row]) -> None:
    cells = [[label for _, label in COLUMNS]]
    cells += [[str(getattr(r, name)) for name, _ in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    for n, line in enumerate(cells):
        print(" | ".join(c.rjust(w) for c, w in zip(line, widths)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    for r in rows:
        for note in r.notes:
            print(f"K={r.monitors}x{r.workers}: {note}")


def main() -> int:
    if not SIZES:
        print("BENCH_SIZES is empty", file=sys.stderr)
        return 2
    threading.stack_size(512 * 1024)
    rows: list[Row] = []
    with _interrupt_once(), ExitStack() as stack:
        from harness.pg import migrated_schema
        from harness.seed import ROUTER_PASSWORD, apply_env, seed_customers

        if LOG_DIR.exists():
            shutil.rmtree(LOG_DIR)
        LOG_DIR.mkdir(parents=True)
        sim = start_sim(max(k for k, _ in SIZES) + PROBES, ROUTER_PASSWORD)
        stack.callback(sim.stop)
        url = stack.enter_context(migrated_schema(prefix="bench"))
        apply_env({**COMMON_ENV, "DATABASE_URL": url})
        env = dict(os.environ)

        import redis

        from harness.workers import beat, worker
        from tasks import runtime, sessions
        from tasks.hub import close_hub

        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        stack.callback(client.flushdb)
        stack.callback(sessions.dispose)  # before the schema drop (callbacks run in reverse)
        stack.callback(close_hub)

        stack.callback(runtime.close)
        seeded = seed_customers(url, sim)
        customers = [c for c in seeded.values() if c["service_type"] == "pppoe"]
        control = worker(env, LOG_DIR, queues="default", concurrency=2, name="bench-control")
        stack.callback(control.stop)
        control.start().wait_ready(timeout=60)
        beat_proc = beat(env, LOG_DIR)
        stack.callback(beat_proc.stop)
        beat_proc.start().wait_ready(timeout=60)

        bench = Bench(env, sim, customers, client)
        for k, workers in SIZES:
            rows.append(bench.run(k, workers))
            print(f"K={k} done", file=sys.stderr, flush=True)

    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host_cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "window_seconds": SECONDS,
        "settings": {k: v for k, v in COMMON_ENV.items() if k != "ENV_FILE"},
        "rows": [asdict(r) for r in rows],
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: everything started was stopped", file=sys.stderr)
        sys.exit(130)
