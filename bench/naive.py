"""Benchmark: the naive way, beside ours (`make bench-naive`).

How billing panels monitor a customer today: every monitor is its own librouteros
connection with its own API login, asking `/interface/monitor-traffic =once=` every
second; a refused or dropped connection is dialled again a second later. Same
simulator as `make bench` (its own process, `max-sessions` 20 as RouterOS >= 7.16),
same customers, same sizes (BENCH_SIZES), a window of BENCH_SECONDS.

Per size it reports what the router sees (logins and refused connections per minute,
peak API sessions against max-sessions, commands per second), samples per second the
monitors actually got against K expected, and the client's CPU (this process runs
only the naive monitors during the window). The table puts our engine's row for the
same K beside it, from the newest bench/results/engine.json (run `make bench` first for
that side; it is left empty otherwise). Writes bench/results/naive.json.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.results import RESULTS_DIR, table, write_results
from bench.sim_process import SimProcess
from bench.stack import PASSWORD_VAR
from harness.seed import ROUTER_PASSWORD

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
SIZES = [
    int(t.strip().partition("x")[0])
    for t in os.environ.get("BENCH_SIZES", "100,500,1000,2000").split(",")
    if t.strip()
]
RETRY = 1.0  # a panel's monitor dials again a second after a failure


@dataclass
class NaiveMonitor:
    host: str
    port: int
    interface: str
    stop: threading.Event
    samples: int = 0
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def run(self) -> None:
        from librouteros import connect
        from librouteros.exceptions import LibRouterosError

        api = None
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                if api is None:
                    api = connect(self.host, "admin", ROUTER_PASSWORD, port=self.port, timeout=5)
                list(api.rawCmd("/interface/monitor-traffic", f"=interface={self.interface}", "=once="))
                self.samples += 1
            except (LibRouterosError, OSError, ConnectionError) as exc:
                self.failures += 1
                name = type(exc).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                if api is not None:
                    try:
                        api.close()
                    except Exception:
                        pass
                    api = None
                self.stop.wait(RETRY)
                next_at = time.monotonic()
                continue
            next_at += 1.0
            self.stop.wait(max(0.0, next_at - time.monotonic()))
        if api is not None:
            try:
                api.close()
            except Exception:
                pass


def run_one(sim: SimProcess, interfaces: list[str], k: int) -> dict[str, Any]:
    stop = threading.Event()
    monitors = [NaiveMonitor("127.0.0.1", sim.port, name, stop) for name in interfaces[:k]]
    threads = [threading.Thread(target=m.run, daemon=True) for m in monitors]
    for t in threads:
        t.start()
    time.sleep(3.0)  # past the first dial of everyone
    before = sim.ask("stats")
    samples0 = sum(m.samples for m in monitors)
    cpu0, wall0 = time.process_time(), time.monotonic()
    peak_sessions = 0
    while time.monotonic() - wall0 < SECONDS:
        peak_sessions = max(peak_sessions, sim.ask("stats")["open_sessions"])
        time.sleep(0.5)
    after = sim.ask("stats")
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    samples = sum(m.samples for m in monitors) - samples0
    stop.set()
    for t in threads:
        t.join(10)
    errors: dict[str, int] = {}
    for m in monitors:
        for name, n in m.errors.items():
            errors[name] = errors.get(name, 0) + n
    per_min = 60.0 / wall
    return {
        "monitors": k,
        "way": "naive",
        "samples_per_s": round(samples / wall, 1),
        "expected_per_s": float(k),
        "router_logins_per_min": round((after["logins"] - before["logins"]) * per_min),
        "router_failed_logins_per_min": round((after["failed_logins"] - before["failed_logins"]) * per_min),
        "router_refused_connections_per_min": round(
            (after["refused_connections"] - before["refused_connections"]) * per_min
        ),
        "router_peak_sessions": peak_sessions,
        "router_max_sessions": 20,
        "router_commands_per_s": round((after["commands_total"] - before["commands_total"]) / wall, 1),
        "client_cpu_percent": round(cpu / wall * 100, 1),
        "client_errors": errors,
        "window_s": round(wall, 1),
    }


def ours(k: int) -> dict[str, Any] | None:
    """Our engine's row for K from the newest `make bench` results, in the same columns."""
    path = RESULTS_DIR / "engine.json"
    if not path.exists():
        return None
    for row in json.loads(path.read_text()).get("rows", []):
        if row["monitors"] == k:
            return {
                "monitors": k,
                "way": f"ours ({row['workers']} worker)",
                "samples_per_s": row["samples_per_s"],
                "expected_per_s": row["expected_per_s"],
                "router_logins_per_min": row.get("router_logins_per_min", ""),
                "router_failed_logins_per_min": 0,
                "router_refused_connections_per_min": 0,
                "router_peak_sessions": row["router_sessions"],
                "router_max_sessions": 20,
                "router_commands_per_s": row.get("router_commands_per_s", ""),
                "client_cpu_percent": row["worker_cpu_percent"],
            }
    return None


COLUMNS = [
    ("monitors", "K"),
    ("way", "way"),
    ("samples_per_s", "samples/s"),
    ("expected_per_s", "expected/s"),
    ("router_logins_per_min", "logins/min"),
    ("router_failed_logins_per_min", "failed logins/min"),
    ("router_refused_connections_per_min", "refused conns/min"),
    ("router_peak_sessions", "peak API sessions"),
    ("router_max_sessions", "max-sessions"),
    ("router_commands_per_s", "commands/s"),
    ("client_cpu_percent", "client CPU %"),
]


def main() -> int:
    if not SIZES:
        print("BENCH_SIZES is empty", file=sys.stderr)
        return 2
    threading.stack_size(256 * 1024)
    sim = SimProcess(
        "bench.engine_sim",
        ["--pppoe", str(max(SIZES)), "--password-env", PASSWORD_VAR],
        env={**os.environ, PASSWORD_VAR: ROUTER_PASSWORD},
    )
    rows: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    try:
        interfaces = [c["target"] for c in sim.customers()["customers"] if c["service_type"] == "pppoe"]
        for k in SIZES:
            row = run_one(sim, interfaces, k)
            rows.append(row)
            mine = ours(k)
            shown.extend([r for r in (mine, row) if r is not None])
            print(f"K={k} done", file=sys.stderr, flush=True)
    finally:
        sim.stop()
    print(table(shown, COLUMNS))
    path = write_results("naive", rows, settings={"window_seconds": SECONDS, "retry_s": RETRY})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
