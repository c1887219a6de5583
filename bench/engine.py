"""Benchmark: the whole product end to end at K concurrent monitors (`make bench`).

Not a test: nothing here asserts on time. The deployment (bench/stack.py): simulator,
PostgreSQL schema, Redis, control worker + beat, monitors workers, uvicorn serving
web.app:app (wsproto, as web/__main__.py runs it), and WebSocket clients in a process
of their own (bench/ws_clients.py): ONE that reads every customer and
BENCH_WS_FILTERED (20) that each read BENCH_WS_FILTER_SIZE (10) customers.

For each size in BENCH_SIZES (default 100,500,1000,2000; a token is K, or KxW for W
monitors workers; plain K gets ceil(K / BENCH_MONITORS_PER_WORKER=1000) workers):
1. burst start: K starts through the REST API as fast as it takes them
   (BENCH_START_MODE=bulk: `POST /api/monitor/start-many` with BENCH_BULK_SIZE ids a
   call; `single`: one `POST /api/monitor/start` per customer from BENCH_START_THREADS
   threads). "burst live s": first call -> the last of the K first samples on the
   WebSocket; split into call -> `started` and `started` -> first sample;
2. steady state, BENCH_SECONDS (20): router -> stream (Redis id time) and router ->
   WebSocket (client receipt) latency, samples the router sent vs samples each client
   received, CPU and peak RSS of every process (web, each worker, control, beat,
   simulator, Redis, the clients);
3. one at a time while K run: BENCH_PROBES (20) starts (REST call -> first sample on
   the WebSocket) and stops (REST call -> `stopped` on the WebSocket);
4. start storm: BENCH_STORM (50) concurrent REST starts while K run; router ->
   WebSocket latency of the K in the 3 s before vs while the storm is served;
5. burst stop: K REST stops (BENCH_START_THREADS threads), REST call -> `stopped` on
   the WebSocket; then every slot, router command and session, and open row must be
   given back.

Latency is measured from the simulator's send time: bench/engine_sim.py logs
time.time() right before it writes each cycle of monitor-traffic samples; a stream
entry or a WebSocket frame is matched to its sample by (interface,
rx-bits-per-second, tx-bits-per-second). Same host, same clock. Router -> stream is
the entry's id time (Redis clock, ms); router -> WebSocket is the receipt time.
A sample sent inside the window that did not reach a client within GRACE seconds
counts as not delivered to that client.

Prints two tables (engine, and processes) and writes bench/results/engine.json.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.results import RESULTS_DIR, table, write_results
from bench.sim_process import SimProcess
from bench.stack import Stack, base_settings, interrupt_once, run_main

LOG_DIR = RESULTS_DIR / "engine-logs"

PER_WORKER = int(os.environ.get("BENCH_MONITORS_PER_WORKER", "1000"))


def _size(token: str) -> tuple[int, int]:
    """ "K" (ceil(K / BENCH_MONITORS_PER_WORKER) monitors workers) or "KxW" (W workers)."""
    k, _, w = token.strip().partition("x")
    return int(k), int(w) if w else max(1, math.ceil(int(k) / PER_WORKER))


def sizes_from_env() -> list[tuple[int, int]]:
    return [_size(t) for t in os.environ.get("BENCH_SIZES", "100,500,1000,2000").split(",") if t.strip()]


SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
START_MODE = os.environ.get("BENCH_START_MODE", "bulk")
BULK_SIZE = int(os.environ.get("BENCH_BULK_SIZE", "500"))
START_THREADS = int(os.environ.get("BENCH_START_THREADS", "32"))
PROBES = int(os.environ.get("BENCH_PROBES", "20"))
STORM = int(os.environ.get("BENCH_STORM", "50"))
WS_FILTERED = int(os.environ.get("BENCH_WS_FILTERED", "20"))
WS_FILTER_SIZE = int(os.environ.get("BENCH_WS_FILTER_SIZE", "10"))
SETTLE = float(os.environ.get("BENCH_SETTLE", "3"))  # seconds between the burst and the window
GRACE = 2.5  # seconds after the window for in-flight samples to arrive
PROBE_WAIT = 5.0  # a probe slower than this is reported (note) and left out of the stats


@dataclass
class Row:
    monitors: int
    workers: int
    window_s: float = 0.0
    # router -> stream (Redis), as before the web layer
    samples_per_s: float = 0.0
    expected_per_s: float = 0.0
    router_sent: int = 0
    lost: int = 0
    seq_gaps: int = 0
    silent_sessions: int = 0
    duplicates: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    # router -> WebSocket (every client)
    ws_latency_ms: dict[str, float] = field(default_factory=dict)
    ws_samples_expected: int = 0
    ws_samples_delivered: int = 0
    ws_clients: list[dict[str, Any]] = field(default_factory=list)
    # one operator action at load K (REST call -> the WebSocket)
    start_latency_ms: dict[str, float] = field(default_factory=dict)
    stop_latency_ms: dict[str, float] = field(default_factory=dict)
    # the burst of K starts, and of K stops
    start_mode: str = ""
    burst_start_calls_s: float = 0.0
    burst_live_s: float = 0.0
    burst_start_ms: dict[str, float] = field(default_factory=dict)
    burst_to_started_ms: dict[str, float] = field(default_factory=dict)
    burst_started_to_sample_ms: dict[str, float] = field(default_factory=dict)
    start_failures: int = 0
    burst_stop_ms: dict[str, float] = field(default_factory=dict)
    # concurrent REST starts while K run: WebSocket latency before vs during
    storm_starts: int = 0
    storm_ws_before_ms: dict[str, float] = field(default_factory=dict)
    storm_ws_during_ms: dict[str, float] = field(default_factory=dict)
    # router -> stream (Redis id time) during the storm: tells the worker's share of the
    # WebSocket figure from the web's
    storm_stream_during_ms: dict[str, float] = field(default_factory=dict)
    storm_served_s: float = 0.0
    # processes
    web_cpu_percent: float = 0.0
    web_rss_mb: float = 0.0
    worker_cpu_percent: float = 0.0
    worker_rss_mb: float = 0.0
    # CPU per unit of work (issue 22's targets): worker ms per sample published, web ms
    # per traffic frame delivered to one client
    worker_cpu_ms_per_sample: float = 0.0
    web_cpu_ms_per_frame: float = 0.0
    processes: list[dict[str, Any]] = field(default_factory=list)
    router_sessions: int = 0
    router_running_commands: int = 0
    router_logins: int = 0
    router_logins_per_min: float = 0.0
    router_commands_per_s: float = 0.0
    redis_used_mb: float = 0.0
    slots_in_use_after_stop: int = -1
    open_sessions_after_stop: int = -1
    router_sessions_after_stop: int = -1
    router_commands_after_stop: int = -1
    notes: list[str] = field(default_factory=list)


# -- small helpers ------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


def stats(values: Sequence[float]) -> dict[str, float]:
    return {"p50": pct(values, 50), "p99": pct(values, 99), "max": pct(values, 100), "n": len(values)}


def _id_ms(stream_id: bytes | str) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(text.split("-", 1)[0])


def _field(fields: dict[bytes, bytes], name: bytes) -> str:
    value = fields.get(name)
    return value.decode() if value is not None else ""


def wait_until(condition: Callable[[], Any], timeout: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def dump_records(clients: SimProcess) -> list[list[Any]]:
    """Every frame the clients recorded since the last dump (see bench/ws_clients.py)."""
    import json

    with tempfile.NamedTemporaryFile(prefix="ws-records-", suffix=".json", delete=False) as f:
        path = f.name
    try:
        clients.ask(f"dump {path}")
        with open(path) as f:
            records: list[list[Any]] = json.load(f)
        return records
    finally:
        os.unlink(path)


Sends = dict[str, dict[tuple[int, int], list[float]]]


def customer_stream_entries(
    client: Any, sessions_of: dict[str, tuple[str, float]], lo_ms: int, hi_ms: int
) -> dict[str, list[tuple[int, dict[bytes, bytes]]]]:
    """Each bench session's entries in [lo_ms, hi_ms], by session id, read from its
    customer's own stream (one pipelined XRANGE per customer, paged)."""
    from tasks.keys import customer_stream

    out: dict[str, list[tuple[int, dict[bytes, bytes]]]] = defaultdict(list)
    cursors: dict[str, str | int] = {cid: lo_ms for cid in sessions_of}
    while cursors:
        pipe = client.pipeline(transaction=False)
        order = list(cursors)
        for cid in order:
            pipe.xrange(customer_stream(cid), min=cursors[cid], max=hi_ms, count=5000)
        for cid, batch in zip(order, pipe.execute()):
            sid = sessions_of[cid][0]
            for entry_id, fields in batch:
                if _field(fields, b"session_id") == sid:
                    out[sid].append((_id_ms(entry_id), fields))
            if len(batch) < 5000:
                del cursors[cid]
            else:
                cursors[cid] = "(" + batch[-1][0].decode()
    return out


def stream_latencies(
    entries: dict[str, list[tuple[int, dict[bytes, bytes]]]],
    sends: Sends,
    iface_of: dict[str, str],
    sessions_of: dict[str, tuple[str, float]],
) -> list[float]:
    """Router -> stream latency (ms, the entry's id time) of every sample in `sends` that
    its customer's stream holds."""
    out: list[float] = []
    for cid, (sid, _) in sessions_of.items():
        pending = {key: deque(v) for key, v in sends.get(iface_of[cid], {}).items()}
        for xadd_ms, fields in entries.get(sid, []):
            if _field(fields, b"type") != "traffic":
                continue
            key = (int(_field(fields, b"rx_bits_per_second")), int(_field(fields, b"tx_bits_per_second")))
            times = pending.get(key)
            if times and times[0] <= xadd_ms / 1000 + 0.001:
                out.append(xadd_ms - times.popleft() * 1000)
    return out


def sends_by_interface(sent: Iterable[Sequence[Any]], since: float = 0.0, until: float = math.inf) -> Sends:
    """Router sends (interface, rx, tx, t) in [since, until] -> interface -> (rx, tx) -> times."""
    out: Sends = defaultdict(lambda: defaultdict(list))
    for name, rx, tx, t in sent:
        if since <= t <= until:
            out[name][(int(rx), int(tx))].append(t)
    return out


def ws_match(
    records: Iterable[Sequence[Any]],
    sends: Sends,
    iface_of: dict[str, str],
    client: int,
    customers: Iterable[str],
    until: float,
) -> tuple[int, list[float]]:
    """One client's frames against the router's sends for its customers: (expected,
    latencies in ms of the delivered ones, receipt - send)."""
    wanted = {iface_of[c] for c in customers if c in iface_of}
    pending = {name: {k: deque(v) for k, v in sends.get(name, {}).items()} for name in wanted}
    expected = sum(len(v) for name in wanted for v in sends.get(name, {}).values())
    latencies: list[float] = []
    for r in sorted((r for r in records if r[0] == client and r[2] == "traffic"), key=lambda r: r[8]):
        name = iface_of.get(r[3])
        if name not in pending or r[8] > until or r[6] is None:
            continue
        times = pending[name].get((int(r[6]), int(r[7])))
        if times and times[0] <= r[8] + 0.001:
            latencies.append((r[8] - times.popleft()) * 1000)
    return expected, latencies


# -- the bench ----------------------------------------------------------------------------


class EngineBench:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sim = stack.sim
        self.iface_of = {c["id"]: c["target"] for c in stack.customers}
        self._sessions_of: dict[str, tuple[str, float]] = {}

    # -- REST --------------------------------------------------------------------------

    def start_many(self, ids: list[str], mode: str = START_MODE) -> dict[str, tuple[str | None, float, str]]:
        """customer -> (session id or None, call time, outcome: started/already/<error code>)."""
        out: dict[str, tuple[str | None, float, str]] = {}
        lock = threading.Lock()
        http = self.stack.http
        if mode == "bulk":

            def bulk(chunk: list[str]) -> None:
                called = time.time()
                response = http.post("/api/monitor/start-many", json={"customer_ids": chunk})
                body = response.json()
                with lock:
                    if response.status_code != 200:
                        for cid in chunk:
                            out[cid] = (None, called, f"http {response.status_code}: {body.get('code')}")
                        return
                    for item in body["results"]:
                        ok = item["status"] in ("started", "already")
                        outcome = item["status"] if ok else item.get("code", "error")
                        out[item["customer_id"]] = (item.get("session_id") if ok else None, called, outcome)

            chunks = [ids[i : i + BULK_SIZE] for i in range(0, len(ids), BULK_SIZE)]
            with ThreadPoolExecutor(max(1, min(4, len(chunks)))) as pool:
                list(pool.map(bulk, chunks))
            return out

        def one(cid: str) -> None:
            called = time.time()
            try:
                response = http.post("/api/monitor/start", params={"customer_id": cid})
                body = response.json()
                result = (
                    (
                        body["session_id"],
                        called,
                        "started" if body["message"] == "Monitoring started" else "already",
                    )
                    if response.status_code == 200
                    else (None, called, str(body.get("code")))
                )
            except Exception as exc:  # reported, never raised: a bench shows failures
                result = (None, called, type(exc).__name__)
            with lock:
                out[cid] = result

        with ThreadPoolExecutor(START_THREADS) as pool:
            list(pool.map(one, ids))
        return out

    def stop_many(self, ids: list[str]) -> dict[str, tuple[float, str | None]]:
        out: dict[str, tuple[float, str | None]] = {}
        lock = threading.Lock()

        def one(cid: str) -> None:
            called = time.time()
            try:
                response = self.stack.http.post("/api/monitor/stop", params={"customer_id": cid})
                error = None if response.status_code == 200 else str(response.json().get("code"))
            except Exception as exc:
                error = type(exc).__name__
            with lock:
                out[cid] = (called, error)

        with ThreadPoolExecutor(START_THREADS) as pool:
            list(pool.map(one, ids))
        return out

    # -- one size ----------------------------------------------------------------------

    def run(self, k: int, workers: int) -> Row:
        row = Row(monitors=k, workers=workers, start_mode=START_MODE)
        stack = self.stack
        chosen = [c["id"] for c in stack.customers[:k]]
        probes = [c["id"] for c in stack.customers[k : k + PROBES]]
        storm = [c["id"] for c in stack.customers[k + PROBES : k + PROBES + STORM]]
        filters: list[list[str] | None] = [None]
        for i in range(WS_FILTERED):
            group = chosen[i::WS_FILTERED][:WS_FILTER_SIZE]
            if group:
                filters.append(group)
        stack.start_monitors(k, workers, extra=PROBES + STORM, tag=f"-{k}x{workers}")
        clients = stack.ws_clients(filters)
        try:
            connected = clients.ask("ready 30")["connected"]
            if connected < len(filters):
                row.notes.append(f"only {connected} of {len(filters)} WebSocket clients connected")
            self._burst_start(row, clients, chosen)
            time.sleep(SETTLE)
            sessions_of = self._sessions_of
            self._steady(row, clients, filters, sessions_of)
            self._probe(row, clients, probes)
            self._storm(row, clients, chosen, storm)
            self._burst_stop(row, clients, chosen)
            self._after_stop(row)
        finally:
            clients.stop()
            stack.stop_monitors()
            stack.clear_streams()
        return row

    def _burst_start(self, row: Row, clients: SimProcess, chosen: list[str]) -> None:
        t0 = time.time()
        started = self.start_many(chosen)
        row.burst_start_calls_s = round(time.time() - t0, 2)
        failed = [(cid, outcome) for cid, (sid, _, outcome) in started.items() if sid is None]
        for cid, outcome in failed[:3]:
            row.notes.append(f"start of {cid} refused: {outcome}")
        self._sessions_of = {cid: (sid, called) for cid, (sid, called, _) in started.items() if sid}
        deadline = time.monotonic() + 60 + len(chosen) / 20
        first: dict[str, float] = {}
        first_started: dict[str, float] = {}
        for cid, (sid, _) in self._sessions_of.items():
            t = clients.ask(f"first 0 {cid} {sid} traffic {max(0.0, deadline - time.monotonic()):.3f}")["t"]
            if t is not None:
                first[cid] = t
                s = clients.ask(f"first 0 {cid} {sid} started 0")["t"]
                if s is not None:
                    first_started[cid] = s
        row.burst_live_s = round(max(first.values()) - t0, 2) if first else float("nan")
        row.burst_start_ms = stats([(first[c] - self._sessions_of[c][1]) * 1000 for c in first])
        row.burst_to_started_ms = stats(
            [(first_started[c] - self._sessions_of[c][1]) * 1000 for c in first_started]
        )
        row.burst_started_to_sample_ms = stats([(first[c] - first_started[c]) * 1000 for c in first_started])
        row.start_failures = len(failed) + len(self._sessions_of) - len(first)
        if len(first) < len(self._sessions_of):
            row.notes.append(
                f"{len(self._sessions_of) - len(first)} sessions without a first sample on the WebSocket"
            )
        print(
            f"K={row.monitors}: {len(first)}/{row.monitors} live on the WebSocket {row.burst_live_s}s"
            f" after the first call (calls took {row.burst_start_calls_s}s, mode {START_MODE})",
            file=sys.stderr,
            flush=True,
        )

    def _steady(
        self,
        row: Row,
        clients: SimProcess,
        filters: list[list[str] | None],
        sessions_of: dict[str, tuple[str, float]],
        seconds: float = SECONDS,
    ) -> None:
        sim, stack = self.sim, self.stack
        dump_records(clients)  # everything before the window
        stats0 = sim.ask("stats")
        t_a, m_a = time.time(), time.monotonic()
        sim.ask("record on")
        meter = stack.meter({"ws-clients": clients.proc.pid})
        stats_mid: dict[str, Any] = {}
        while time.monotonic() - m_a < seconds:
            if not stats_mid and time.monotonic() - m_a >= seconds / 2:
                stats_mid = sim.ask("stats")
            time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - m_a))))
        t_b = time.time()
        processes = meter.read()
        sent = sim.ask("record off")["log"]
        stats1 = sim.ask("stats")
        row.window_s = round(time.monotonic() - m_a, 1)
        row.router_logins_per_min = round((stats1["logins"] - stats0["logins"]) * 60 / row.window_s, 1)
        row.router_commands_per_s = round(
            (stats1["commands_total"] - stats0["commands_total"]) / row.window_s, 1
        )
        time.sleep(GRACE)
        records = dump_records(clients)
        row.redis_used_mb = round(stack.redis.info("memory")["used_memory"] / 2**20, 1)

        # router -> stream, from Redis: each customer's own stream, which keeps
        # CUSTOMER_STREAM_RETENTION (30 min). The combined stream is trimmed to
        # STREAM_MAXLEN entries (200 s at 1,000 monitors), so a long window read from it
        # counted trimmed entries as lost (issue 22: 103,209 "lost" in a 600 s soak).
        entries = customer_stream_entries(
            stack.redis, sessions_of, int(t_a * 1000), int((t_b + GRACE) * 1000)
        )
        sends = sends_by_interface(sent, t_a, t_b)
        latencies: list[float] = []
        delivered = router_sent = lost = 0
        t_b_ms = t_b * 1000
        for cid, (sid, _) in sessions_of.items():
            iface = self.iface_of[cid]
            pending = {key: deque(v) for key, v in sends.get(iface, {}).items()}
            router_sent += sum(len(v) for v in pending.values())
            consumed: set[tuple[int, int]] = set()
            seqs: list[int] = []
            traffic = 0
            for xadd_ms, fields in entries.get(sid, []):
                seq = _field(fields, b"seq")
                if seq:  # ping replies and gap entries carry none (tasks/message.py)
                    seqs.append(int(seq))
                if _field(fields, b"type") != "traffic":
                    continue
                if xadd_ms <= t_b_ms:
                    traffic += 1
                key = (int(_field(fields, b"rx_bits_per_second")), int(_field(fields, b"tx_bits_per_second")))
                times = pending.get(key)
                if times and times[0] <= xadd_ms / 1000 + 0.001:
                    latencies.append(xadd_ms - times.popleft() * 1000)
                    consumed.add(key)
                elif key in consumed and xadd_ms <= t_b_ms:
                    row.duplicates += 1
            lost += sum(len(v) for v in pending.values())
            delivered += traffic
            row.silent_sessions += traffic == 0
            if len(seqs) != len(set(seqs)):
                row.duplicates += len(seqs) - len(set(seqs))
            ordered = sorted(set(seqs))
            row.seq_gaps += sum(b - a - 1 for a, b in zip(ordered, ordered[1:]))
        row.samples_per_s = round(delivered / row.window_s, 1)
        row.expected_per_s = float(len(sessions_of))
        row.router_sent, row.lost = router_sent, lost
        row.latency_p50_ms, row.latency_p99_ms, row.latency_max_ms = (
            pct(latencies, 50),
            pct(latencies, 99),
            pct(latencies, 100),
        )

        # router -> WebSocket, per client
        ws_all: list[float] = []
        for index, wanted in enumerate(filters):
            customers = list(sessions_of) if wanted is None else [c for c in wanted if c in sessions_of]
            expected, lat = ws_match(records, sends, self.iface_of, index, customers, t_b + GRACE)
            ws_all.extend(lat)
            row.ws_samples_expected += expected
            row.ws_samples_delivered += len(lat)
            row.ws_clients.append(
                {
                    "client": index,
                    "customers": "all" if wanted is None else len(wanted),
                    "expected": expected,
                    "delivered": len(lat),
                    "p99_ms": pct(lat, 99),
                }
            )
        row.ws_latency_ms = stats(ws_all)
        row.processes = processes
        by_name = {p["process"]: p for p in processes}
        row.web_cpu_percent = by_name["web"]["cpu_percent"]
        row.web_rss_mb = by_name["web"]["peak_rss_mb"]
        mons = [p for p in processes if p["process"].startswith("bench-mon")]
        row.worker_cpu_percent = round(sum(p["cpu_percent"] for p in mons), 1)
        row.worker_rss_mb = round(sum(p["peak_rss_mb"] for p in mons), 1)
        cpu_ms = row.window_s * 10  # one percent of a core over the window, in ms
        if delivered:
            row.worker_cpu_ms_per_sample = round(row.worker_cpu_percent * cpu_ms / delivered, 4)
        if row.ws_samples_delivered:
            row.web_cpu_ms_per_frame = round(row.web_cpu_percent * cpu_ms / row.ws_samples_delivered, 4)
        stats_now = stats_mid or sim.ask("stats")
        row.router_sessions = stats_now["open_sessions"]
        row.router_running_commands = stats_now["running_commands"]
        row.router_logins = stats_now.get("logins", -1)

    def _probe(self, row: Row, clients: SimProcess, probes: list[str]) -> None:
        start_ms: list[float] = []
        stop_ms: list[float] = []
        started: list[tuple[str, str]] = []
        for cid in probes:
            result = self.start_many([cid], mode="single")[cid]
            if result[0] is None:
                row.notes.append(f"probe start refused: {result[2]}")
                continue
            started.append((cid, result[0]))
            t = clients.ask(f"first 0 {cid} {result[0]} traffic {PROBE_WAIT}")["t"]
            if t is None:
                row.notes.append(f"probe: no sample for {cid} within {PROBE_WAIT:g} s")
            else:
                start_ms.append((t - result[1]) * 1000)
        for cid, sid in started:
            called, error = self.stop_many([cid])[cid]
            t = clients.ask(f"first 0 {cid} {sid} stopped {PROBE_WAIT}")["t"]
            if error or t is None:
                row.notes.append(f"probe: no stopped for {cid} within {PROBE_WAIT:g} s ({error})")
            else:
                stop_ms.append((t - called) * 1000)
        row.start_latency_ms = stats(start_ms)
        row.stop_latency_ms = stats(stop_ms)

    def _storm(self, row: Row, clients: SimProcess, chosen: list[str], storm: list[str]) -> None:
        """STORM concurrent single REST starts while K run: does /ws delivery stall?"""
        if not storm:
            return
        sim = self.sim
        dump_records(clients)
        t_a = time.time()
        sim.ask("record on")
        time.sleep(3.0)
        t_storm = time.time()
        with ThreadPoolExecutor(len(storm)) as pool:
            results = list(pool.map(lambda cid: self.start_many([cid], mode="single")[cid], storm))
        live = 0
        for cid, (sid, _, _) in zip(storm, results):
            if sid and clients.ask(f"first 0 {cid} {sid} traffic 10")["t"] is not None:
                live += 1
        t_done = time.time()
        time.sleep(max(0.5, t_storm + 2.5 - time.time()))
        sent = sim.ask("record off")["log"]
        time.sleep(GRACE)
        records = dump_records(clients)
        row.storm_starts = live
        row.storm_served_s = round(t_done - t_storm, 2)
        before = sends_by_interface(sent, t_a, t_storm)
        # At least two cycles, or a storm served within one second would have no samples.
        during = sends_by_interface(sent, t_storm, max(t_done, t_storm + 2.0))
        _, lat_before = ws_match(records, before, self.iface_of, 0, chosen, t_storm + GRACE)
        _, lat_during = ws_match(
            records, during, self.iface_of, 0, chosen, max(t_done, t_storm + 2.0) + GRACE
        )
        row.storm_ws_before_ms = stats(lat_before)
        row.storm_ws_during_ms = stats(lat_during)
        until = max(t_done, t_storm + 2.0)
        sessions = {cid: self._sessions_of[cid] for cid in chosen if cid in self._sessions_of}
        entries = customer_stream_entries(
            self.stack.redis, sessions, int(t_storm * 1000), int((until + GRACE) * 1000)
        )
        row.storm_stream_during_ms = stats(stream_latencies(entries, during, self.iface_of, sessions))
        self.stop_many([cid for cid, (sid, _, _) in zip(storm, results) if sid])

    def _burst_stop(self, row: Row, clients: SimProcess, chosen: list[str]) -> None:
        ids = [cid for cid in chosen if cid in self._sessions_of]
        stopped = self.stop_many(ids)
        errors = [e for _, e in stopped.values() if e]
        for error in errors[:3]:
            row.notes.append(f"stop failed: {error}")
        deadline = time.monotonic() + 30
        lat: list[float] = []
        for cid in ids:
            sid = self._sessions_of[cid][0]
            t = clients.ask(f"first 0 {cid} {sid} stopped {max(0.0, deadline - time.monotonic()):.3f}")["t"]
            if t is not None:
                lat.append((t - stopped[cid][0]) * 1000)
        if len(lat) < len(ids):
            row.notes.append(f"{len(ids) - len(lat)} sessions without `stopped` on the WebSocket")
        row.burst_stop_ms = stats(lat)

    def _after_stop(self, row: Row) -> None:
        from sqlalchemy import func, select

        from models import DesiredState, MonitorSession
        from tasks import runtime, sessions

        sem = runtime.current().semaphore
        wait_until(lambda: sem.in_use() == 0, timeout=30)
        wait_until(
            lambda: (s := self.sim.ask("stats"))["running_commands"] == 0 and s["open_sessions"] == 0,
            timeout=15,
        )
        after = self.sim.ask("stats")
        with sessions.db() as s:
            still_open = s.scalar(
                select(func.count())
                .select_from(MonitorSession)
                .where(MonitorSession.desired_state == DesiredState.RUNNING)
            )
        row.slots_in_use_after_stop = sem.in_use()
        row.open_sessions_after_stop = int(still_open or 0)
        row.router_sessions_after_stop = after["open_sessions"]
        row.router_commands_after_stop = after["running_commands"]


# -- output -------------------------------------------------------------------------------


def _p(d: dict[str, float], *keys: str) -> str:
    return " / ".join(str(d.get(k, "")) for k in keys)


def summary(r: Row) -> dict[str, Any]:
    return {
        "K": f"{r.monitors}x{r.workers}",
        "lost": r.lost,
        "dup": r.duplicates,
        "router>stream p50/p99": f"{r.latency_p50_ms} / {r.latency_p99_ms}",
        "router>ws p50/p99/max": _p(r.ws_latency_ms, "p50", "p99", "max"),
        "ws delivered/expected": f"{r.ws_samples_delivered}/{r.ws_samples_expected}",
        "start p50/p99": _p(r.start_latency_ms, "p50", "p99"),
        "stop p50/p99": _p(r.stop_latency_ms, "p50", "p99"),
        "burst live s": r.burst_live_s,
        "storm ws p99 before/during": f"{r.storm_ws_before_ms.get('p99')}/{r.storm_ws_during_ms.get('p99')}",
        "storm stream p99": r.storm_stream_during_ms.get("p99"),
        "web CPU%": r.web_cpu_percent,
        "web RSS": r.web_rss_mb,
        "worker CPU%": r.worker_cpu_percent,
        "worker RSS": r.worker_rss_mb,
        "worker ms/sample": r.worker_cpu_ms_per_sample,
        "web ms/frame": r.web_cpu_ms_per_frame,
        "router sess": r.router_sessions,
        "slots after": r.slots_in_use_after_stop,
    }


def print_tables(rows: list[Row]) -> None:
    sums = [summary(r) for r in rows]
    if sums:
        print(table(sums, [(k, k) for k in sums[0]]))
    procs = [{"K": f"{r.monitors}x{r.workers}", **p} for r in rows for p in r.processes]
    if procs:
        print()
        print(
            table(
                procs,
                [
                    ("K", "K"),
                    ("process", "process"),
                    ("cpu_percent", "CPU %"),
                    ("peak_rss_mb", "peak RSS MB"),
                ],
            )
        )
    for r in rows:
        for note in r.notes:
            print(f"K={r.monitors}x{r.workers}: {note}")


def main() -> int:
    sizes = sizes_from_env()
    if not sizes:
        print("BENCH_SIZES is empty", file=sys.stderr)
        return 2
    threading.stack_size(512 * 1024)
    rows: list[Row] = []
    biggest = max(k for k, _ in sizes)
    env = {"MAX_CONCURRENT_MONITORS": str(biggest + PROBES + STORM)}
    with interrupt_once(), Stack(pppoe=biggest + PROBES + STORM, log_dir=LOG_DIR, env=env) as stack:
        bench = EngineBench(stack)
        for k, workers in sizes:
            rows.append(bench.run(k, workers))
            print(f"K={k}x{workers} done", file=sys.stderr, flush=True)
    print_tables(rows)
    settings: dict[str, Any] = {
        **base_settings(),
        **env,
    }
    settings.update(
        window_seconds=SECONDS, start_mode=START_MODE, bulk_size=BULK_SIZE, ws_filtered=WS_FILTERED
    )
    path = write_results("engine", rows, settings=settings)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
