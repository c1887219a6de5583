"""Benchmark: router affinity across worker hosts (`make bench-affinity`).

Not a test: nothing here asserts. Issue 21's targets for router affinity
(docs/architecture.md, Router affinity), measured on bench/stack.py's deployment with
BENCH_AFFINITY_ROUTERS (4) simulated routers, each its own simulator process with
BENCH_AFFINITY_PER_ROUTER (100) PPPoE monitors and its router watch, and
BENCH_AFFINITY_HOSTS (4) simulated hosts of 2 monitors worker processes each
(`-n mK@hostN`, harness/hosts.py). Every router's cap is BENCH_AFFINITY_CAP, default the
product's ROUTER_MAX_API_SESSIONS (2); MONITOR_LEASE_TTL, RECONCILE_INTERVAL and
AFFINITY_INTERVAL are the product defaults (30 s, 5 s, 1 s) unless set in the
environment. One run, in order:

1. **Sessions per router.** Every monitor started through `POST /api/monitor/start-many`;
   once all produce, for BENCH_AFFINITY_WINDOW (10) seconds, once a second, each router's
   `/user/active` counted (our API sessions): the most per router against its cap. The
   monitors workers' CPU and peak RSS over the same window (bench/stack.py Meter).
2. **A host killed.** kill -9 of host1's 2 processes: seconds until every monitor they ran
   produces again (a sample Redis took after the kill) against TTL + reconcile interval +
   5 s; duplicate producers (customers whose fences went down in their stream: two
   claimants at once); slots leaked once the semaphore settled (leases that are not the
   one lease of an open session); the most sessions any router saw meanwhile.
3. **A host added.** 2 more processes on a new host, then BENCH_AFFINITY_EXTRA (10) more
   starts per router: running monitors moved (their attempt or worker changed: must be
   0), and how many new starts ran on the new host. With the cap at 2 and every router
   held twice, the new host can hold nothing, so none land there (the rule, not a fault);
   with cap 3 there is room and some do.

Without affinity every process consumed `monitors` and opened a session to every router
it ran a monitor on: up to 8 per router with 8 processes (issue 21). That is not measured
again here: the plain queue no longer spreads a router's monitors over every process.

Prints a table of figures and one of processes; writes bench/results/affinity.json.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from bench.results import RESULTS_DIR, table, write_results
from bench.sim_process import SimProcess
from bench.stack import PASSWORD_VAR, Meter, Stack, base_settings, interrupt_once, run_main
from harness.hosts import (
    Hosts,
    add_simulated_router,
    api_sessions,
    consuming,
    fences_out_of_order,
    host_nodes,
    leaked_slots,
    newest,
    producing_since,
    redis_ms,
    status_by_customer,
)
from harness.seed import ROUTER_ID, ROUTER_PASSWORD

LOG_DIR = RESULTS_DIR / "affinity-logs"

ROUTERS = int(os.environ.get("BENCH_AFFINITY_ROUTERS", "4"))
PER_ROUTER = int(os.environ.get("BENCH_AFFINITY_PER_ROUTER", "100"))
HOSTS = int(os.environ.get("BENCH_AFFINITY_HOSTS", "4"))
PER_HOST = 2
EXTRA = int(os.environ.get("BENCH_AFFINITY_EXTRA", "10"))
WINDOW = float(os.environ.get("BENCH_AFFINITY_WINDOW", "10"))
CAP = int(os.environ.get("BENCH_AFFINITY_CAP", "2"))  # the product's ROUTER_MAX_API_SESSIONS
# The product's defaults (settings.py) unless the environment sets them.
TTL = float(os.environ.get("MONITOR_LEASE_TTL", "30"))
RECONCILE = float(os.environ.get("RECONCILE_INTERVAL", "5"))
AFFINITY_INTERVAL = float(os.environ.get("AFFINITY_INTERVAL", "1"))
# The product's ratio (5 s renewals of a 30 s lease) when only the TTL is shrunk.
RENEW = float(os.environ.get("MONITOR_RENEW_INTERVAL", str(min(5.0, round(TTL / 6, 2)))))

ENV = {
    "MONITOR_LEASE_TTL": str(TTL),
    "MONITOR_RENEW_INTERVAL": str(RENEW),
    "RECONCILE_INTERVAL": str(RECONCILE),
    "AFFINITY_INTERVAL": str(AFFINITY_INTERVAL),
    "ROUTER_MAX_API_SESSIONS": str(CAP),
    # The rule covers the watch as well: on, as the product runs it.
    "ROUTER_WATCH": "true",
    "MAX_CONCURRENT_MONITORS": str(ROUTERS * (PER_ROUTER + EXTRA) + 50),
}
# A process may hold two routers (6 processes for 8 holds once a host is gone).
CONCURRENCY = 2 * (PER_ROUTER + EXTRA) + 20


@dataclass
class Row:
    routers: int
    per_router: int
    hosts: int
    worker_processes: int
    cap: int
    ttl_s: float
    reconcile_s: float
    affinity_interval_s: float
    # 1: sessions per router with every process running
    window_s: float = 0.0
    sessions_max_by_router: dict[str, int] = field(default_factory=dict)
    sessions_max: int = 0
    holders_by_router: dict[str, list[str]] = field(default_factory=dict)
    monitors_by_process: dict[str, int] = field(default_factory=dict)
    # 2: a host killed
    killed_host: str = ""
    killed_monitors: int = 0
    recovered_s: float = math.nan
    bound_s: float = 0.0
    all_recovered_s: float = math.nan
    duplicate_producers: int = 0
    slots_leaked: int = 0
    sessions_max_after_kill: int = 0
    # 3: a host added
    new_host: str = ""
    new_host_holds: list[str] = field(default_factory=list)
    running_moved: int = 0
    new_starts: int = 0
    new_starts_on_new_host: int = 0
    sessions_max_after_add: int = 0
    # worker processes over the window of 1
    worker_cpu_percent_mean: float = 0.0
    worker_cpu_percent_max: float = 0.0
    worker_rss_mb_mean: float = 0.0
    worker_rss_mb_max: float = 0.0
    processes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class SessionSampler:
    """Once a second, our API sessions on every router (/user/active), tagged with the
    phase then running; the most per router and phase."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.phase = "start"
        self.most: dict[str, dict[str, int]] = defaultdict(dict)
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="session-sampler", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            phase = self.phase
            for router_id, port in self.ports.items():
                try:
                    n = api_sessions(port)
                except Exception:  # a busy router answers late: one sample fewer
                    self.failures += 1
                    continue
                seen = self.most[phase]
                seen[router_id] = max(seen.get(router_id, 0), n)
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    def start_phase(self, phase: str) -> None:
        self.phase = phase

    def peak(self, phase: str) -> int:
        return max(self.most.get(phase, {}).values(), default=0)


def wait_until(condition: Any, timeout: float, step: float = 0.25) -> float | None:
    """Seconds until `condition()` held, or None if it did not within `timeout`."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            return None
        time.sleep(step)
    return round(time.monotonic() - began, 1)


def start_many(stack: Stack, ids: list[str]) -> None:
    for i in range(0, len(ids), 500):
        stack.http.post("/api/monitor/start-many", json={"customer_ids": ids[i : i + 500]}).raise_for_status()


def run(stack: Stack, sims: dict[str, Any], customers: dict[str, list[str]]) -> Row:
    from tasks.affinity import holders_of
    from tasks.semaphore import Semaphore

    row = Row(
        routers=ROUTERS,
        per_router=PER_ROUTER,
        hosts=HOSTS,
        worker_processes=HOSTS * PER_HOST,
        cap=CAP,
        ttl_s=TTL,
        reconcile_s=RECONCILE,
        affinity_interval_s=AFFINITY_INTERVAL,
    )
    client = stack.redis
    nodes = host_nodes(HOSTS, PER_HOST)
    hosts = Hosts(stack.env, LOG_DIR, CONCURRENCY, started=stack.monitors.append)
    hosts.start([n for ns in nodes.values() for n in ns], timeout=120)
    sampler = SessionSampler({r: sim.port for r, sim in sims.items()})
    sampler.thread.start()
    try:
        started = [cid for ids in customers.values() for cid in ids[:PER_ROUTER]]
        since = redis_ms(client)
        start_many(stack, started)
        took = wait_until(lambda: producing_since(client, started, since), 120 + len(started) / 10, 1.0)
        if took is None:
            late = [c for c, e in newest(client, started).items() if e.get("type") != "traffic"]
            row.notes.append(f"{len(late)} of {len(started)} monitors had no sample after the start")
        # 1: the steady window
        sampler.start_phase("steady")
        meter = Meter(hosts.pids())
        time.sleep(WINDOW)
        row.window_s = round(time.monotonic() - meter.wall0, 1)
        row.processes = meter.read()
        row.sessions_max_by_router = dict(sorted(sampler.most["steady"].items()))
        row.sessions_max = sampler.peak("steady")
        row.holders_by_router = {r: sorted(holders_of(client, r)) for r in sims}
        status = status_by_customer()
        by_process: dict[str, int] = defaultdict(int)
        for cid in started:
            by_process[str(status.get(cid, {}).get("worker"))] += 1
        row.monitors_by_process = dict(sorted(by_process.items()))
        cpus = [p["cpu_percent"] for p in row.processes]
        rss = [p["peak_rss_mb"] for p in row.processes]
        row.worker_cpu_percent_mean = round(sum(cpus) / max(1, len(cpus)), 1)
        row.worker_cpu_percent_max = max(cpus, default=0.0)
        row.worker_rss_mb_mean = round(sum(rss) / max(1, len(rss)), 1)
        row.worker_rss_mb_max = max(rss, default=0.0)

        # 2: a host killed
        row.killed_host = "host1"
        victims = nodes["host1"]
        moved = [cid for cid in started if status.get(cid, {}).get("worker") in victims]
        row.killed_monitors = len(moved)
        row.bound_s = TTL + RECONCILE + 5.0
        sampler.start_phase("kill")
        killed_ms = redis_ms(client)
        hosts.kill(victims, signal.SIGKILL)
        recovered = wait_until(lambda: producing_since(client, moved, killed_ms), row.bound_s + 60)
        row.recovered_s = math.nan if recovered is None else recovered
        if recovered is None:
            row.notes.append(f"host1's monitors not all producing {row.bound_s + 60:.0f}s after the kill")
        everyone = wait_until(lambda: producing_since(client, started, killed_ms), 60)
        row.all_recovered_s = math.nan if everyone is None else round((recovered or 0) + everyone, 1)
        row.duplicate_producers = len(fences_out_of_order(client, started, killed_ms - 5000))
        sem = Semaphore(client)
        if wait_until(lambda: len(sem.holders()) == len(started), 30) is None:
            row.notes.append(f"the semaphore held {len(sem.holders())} slots for {len(started)} monitors")
        row.slots_leaked = leaked_slots(client)
        row.sessions_max_after_kill = sampler.peak("kill")

        # 3: a host added
        before = status_by_customer()
        new_host = f"host{HOSTS + 1}"
        newcomers = host_nodes(1, PER_HOST, first_host=HOSTS + 1)[new_host]
        row.new_host = new_host
        sampler.start_phase("add")
        hosts.start(newcomers, timeout=120)

        def joined() -> bool:
            return all(any(n in holders_of(client, r) for r in sims) for n in newcomers)

        # It may not join at all (every router full): a few rounds tell.
        wait_until(joined, 5 * AFFINITY_INTERVAL + 5)
        holds = [(n, r) for r in sims for n in holders_of(client, r) if n in newcomers]
        row.new_host_holds = sorted(f"{n}:{r}" for n, r in holds)
        # A hold is consumed once the worker ran the keeper's add_consumer (a control
        # command through the broker): starts sent before that all go to the old holders.
        if wait_until(lambda: consuming(holds), 30, 1.0) is None:
            row.notes.append("the new host did not consume the queues of the routers it holds within 30 s")
        # kombu's Redis transport adds a queue to its blocking pop at the next one (each
        # lasts up to 1 s): until then the old holders alone are waiting on it.
        time.sleep(2.0)
        fresh = [cid for ids in customers.values() for cid in ids[PER_ROUTER : PER_ROUTER + EXTRA]]
        row.new_starts = len(fresh)
        since = redis_ms(client)
        start_many(stack, fresh)
        if wait_until(lambda: producing_since(client, fresh, since), 60 + len(fresh) / 10) is None:
            row.notes.append("not every new start produced within 60 s")
        after = status_by_customer()
        row.running_moved = sum(
            (after.get(c, {}).get("attempt"), after.get(c, {}).get("worker"))
            != (before.get(c, {}).get("attempt"), before.get(c, {}).get("worker"))
            for c in started
        )
        row.new_starts_on_new_host = sum(after.get(c, {}).get("worker") in newcomers for c in fresh)
        time.sleep(2.0)  # two more session samples with the newcomers' monitors running
        row.sessions_max_after_add = sampler.peak("add")
        if sampler.failures:
            row.notes.append(f"{sampler.failures} /user/active reads failed")
    finally:
        sampler.stop.set()
        sampler.thread.join(5)
    return row


def figures(row: Row) -> list[dict[str, str]]:
    today = " (before affinity: up to 8)" if row.worker_processes == 8 else ""
    by_router = ", ".join(f"{k} {v}" for k, v in row.sessions_max_by_router.items())
    return [
        {
            "figure": f"API sessions per router from us, max over {row.window_s:.0f}s, "
            f"{row.worker_processes} processes on {row.hosts} hosts",
            "measured": f"{row.sessions_max} ({by_router})",
            "target": f"<= cap {row.cap}{today}",
        },
        {
            "figure": f"kill -9 {row.killed_host} (2 processes): "
            f"its {row.killed_monitors} monitors produce again",
            "measured": f"{row.recovered_s} s (all {row.all_recovered_s} s)",
            "target": f"<= TTL {row.ttl_s:g} + reconcile {row.reconcile_s:g} + 5 = {row.bound_s:g} s",
        },
        {
            "figure": "duplicate producers (a fence went down)",
            "measured": str(row.duplicate_producers),
            "target": "0",
        },
        {"figure": "slots leaked after settling", "measured": str(row.slots_leaked), "target": "0"},
        {
            "figure": "API sessions per router, max from the kill to the add",
            "measured": str(row.sessions_max_after_kill),
            "target": f"<= cap {row.cap}",
        },
        {
            "figure": f"add {row.new_host} (2 processes): routers it holds",
            "measured": ", ".join(row.new_host_holds) or "none",
            "target": "where a cap has room",
        },
        {"figure": "running monitors moved", "measured": str(row.running_moved), "target": "0"},
        {
            "figure": "new starts that run on the new host",
            "measured": f"{row.new_starts_on_new_host} of {row.new_starts}",
            "target": "some when a cap has room; none when every router is full",
        },
        {
            "figure": "API sessions per router, max after the add",
            "measured": str(row.sessions_max_after_add),
            "target": f"<= cap {row.cap}",
        },
        {
            "figure": "worker CPU per process over the window (mean / max), "
            f"{row.per_router * row.routers} monitors",
            "measured": f"{row.worker_cpu_percent_mean} / {row.worker_cpu_percent_max} %",
            "target": "",
        },
        {
            "figure": "worker peak RSS per process (mean / max)",
            "measured": f"{row.worker_rss_mb_mean} / {row.worker_rss_mb_max} MiB",
            "target": "",
        },
    ]


def main() -> int:
    threading.stack_size(512 * 1024)
    # A shrunk TTL from the environment with the default renew interval (5 s) is refused
    # by the settings check, which runs before the Stack applies ENV (the schema's migration).
    os.environ.update({k: ENV[k] for k in ("MONITOR_LEASE_TTL", "MONITOR_RENEW_INTERVAL")})
    load_before = [round(x, 2) for x in os.getloadavg()]
    with (
        interrupt_once(),
        ExitStack() as more,
        Stack(pppoe=PER_ROUTER + EXTRA, log_dir=LOG_DIR, env=ENV) as stack,
    ):
        sims: dict[str, Any] = {ROUTER_ID: stack.sim}
        customers = {ROUTER_ID: [c["id"] for c in stack.customers]}
        for n in range(2, ROUTERS + 1):
            sim = SimProcess(
                "bench.engine_sim",
                ["--pppoe", str(PER_ROUTER + EXTRA), "--password-env", PASSWORD_VAR],
                env={**os.environ, PASSWORD_VAR: ROUTER_PASSWORD},
            )
            more.callback(sim.stop)
            router_id = f"sim-{n}"
            sims[router_id] = sim
            customers[router_id] = add_simulated_router(router_id, sim)
        row = run(stack, sims, customers)
    print(table(figures(row), [("figure", "figure"), ("measured", "measured"), ("target", "target")]))
    print()
    print(
        table(
            row.processes, [("process", "process"), ("cpu_percent", "CPU %"), ("peak_rss_mb", "peak RSS MiB")]
        )
    )
    print("monitors per process:", ", ".join(f"{k} {v}" for k, v in row.monitors_by_process.items()))
    for note in row.notes:
        print(f"note: {note}")
    settings = {
        **base_settings(),
        **ENV,
        "routers": ROUTERS,
        "per_router": PER_ROUTER,
        "extra_per_router": EXTRA,
        "hosts": HOSTS,
        "processes_per_host": PER_HOST,
        "concurrency": CONCURRENCY,
        "window_s": WINDOW,
    }
    path = write_results("affinity", [row], settings=settings, load_average_before=load_before)
    print(f"wrote {path} (load average {load_before} before, {[round(x, 2) for x in os.getloadavg()]} after)")
    return 0


if __name__ == "__main__":
    run_main(main)
