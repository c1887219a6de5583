"""Benchmark: K monitor-traffic streams over ONE RouterClient connection (`make bench-routeros`).

The simulator runs in a child process (this module with ``--serve-sim``), so its CPU
is not counted as the client's; the child answers ``stats`` requests on stdin with
the simulator's counters as one JSON line.

Each stream has its own consumer thread blocked in ``stream.get()`` (as each monitor
task would be), which checks that every sample carries its own interface's ``name``
(misrouted otherwise) and that ``.section`` never skips (lost otherwise; samples the
bounded queue dropped are reported separately as ``dropped``).

Prints one table and writes the same rows to bench/results/routeros_streams.json (bench/results.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass

from bench.results import table, write_results
from bench.sim_process import SimProcess
from routeros import RouterClient, RouterEndpoint

PROPLIST = [
    "name",
    "rx-bits-per-second",
    "tx-bits-per-second",
    "rx-packets-per-second",
    "tx-packets-per-second",
]


@dataclass
class Row:
    streams: int
    seconds: float
    expected_samples_per_s: float
    samples_per_s: float
    client_cpu_s_per_1000: float
    client_cpu_percent: float
    sim_cpu_percent: float
    lost: int
    misrouted: int
    dropped: int
    unknown_tag: int
    router_sessions: int
    router_running_commands: int
    start_seconds: float


class Consumer:
    """Drains one stream on its own thread and checks each sample."""

    __slots__ = ("stream", "name", "count", "lost", "misrouted", "last_section", "thread", "first")

    def __init__(self, client: RouterClient, name: str) -> None:
        self.name = name
        self.count = 0
        self.lost = 0
        self.misrouted = 0
        self.last_section: int | None = None
        self.first = threading.Event()
        self.stream = client.stream(
            "/interface/monitor-traffic", {"interface": name, "interval": "1"}, proplist=PROPLIST
        )
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            event = self.stream.get(timeout=5)
            if event is None:
                if self.stream.closed:
                    return
                continue
            if event.kind != "data":
                if event.kind in ("done", "trap", "failed"):
                    return
                continue
            data = event.data or {}
            if data.get("name") != self.name:
                self.misrouted += 1
            section = int(data.get(".section", "-1"))
            if self.last_section is not None and section > self.last_section + 1:
                self.lost += section - self.last_section - 1
            self.last_section = section
            self.count += 1
            self.first.set()


def serve_sim(pppoe: int) -> None:
    from routeros.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(pppoe=pppoe, hotspot=0, static=0, seed=1))
    sim.start()
    names = [c["target"] for c in sim.customers()["customers"] if c["service_type"] == "pppoe"]
    print(json.dumps({"port": sim.port, "interfaces": names}), flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            print(json.dumps(sim.stats()), flush=True)
    sim.stop()


def run_one(sim: SimProcess, k: int, seconds: float) -> Row:
    client = RouterClient(RouterEndpoint("127.0.0.1", sim.port, "admin", "admin", timeout=30), keepalive=10)
    client.connect()
    t0 = time.monotonic()
    consumers = [Consumer(client, name) for name in sim.hello["interfaces"][:k]]
    deadline = time.monotonic() + 60
    for consumer in consumers:
        consumer.first.wait(max(0.0, deadline - time.monotonic()))
    start_seconds = time.monotonic() - t0
    time.sleep(1.5)  # let the first-sample burst pass before the window opens

    counts0 = sum(c.count for c in consumers)
    cpu0, sim_cpu0, wall0 = time.process_time(), sim.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    counts1 = sum(c.count for c in consumers)
    cpu1, sim_cpu1, wall1 = time.process_time(), sim.cpu_seconds(), time.monotonic()
    router = sim.ask("stats")

    for consumer in consumers:
        consumer.stream.cancel()
    for consumer in consumers:
        consumer.thread.join(timeout=30)
    stats = client.stats()
    client.close()

    wall = wall1 - wall0
    samples = counts1 - counts0
    cpu = cpu1 - cpu0
    return Row(
        streams=k,
        seconds=round(wall, 2),
        expected_samples_per_s=float(k),
        samples_per_s=round(samples / wall, 1),
        client_cpu_s_per_1000=round(cpu / samples * 1000, 4) if samples else float("nan"),
        client_cpu_percent=round(cpu / wall * 100, 1),
        sim_cpu_percent=round((sim_cpu1 - sim_cpu0) / wall * 100, 1),
        lost=sum(c.lost for c in consumers),
        misrouted=sum(c.misrouted for c in consumers),
        dropped=stats["dropped"],
        unknown_tag=stats["unknown_tag_sentences"],
        router_sessions=router.get("open_sessions", -1),
        router_running_commands=router.get("running_commands", -1),
        start_seconds=round(start_seconds, 2),
    )


COLUMNS = [
    ("streams", "K"),
    ("samples_per_s", "samples/s"),
    ("expected_samples_per_s", "expected/s"),
    ("client_cpu_s_per_1000", "CPU s/1k"),
    ("client_cpu_percent", "client CPU%"),
    ("sim_cpu_percent", "sim CPU%"),
    ("lost", "lost"),
    ("misrouted", "misrouted"),
    ("dropped", "dropped"),
    ("unknown_tag", "unknown tag"),
    ("router_sessions", "router sessions"),
    ("router_running_commands", "router cmds"),
    ("start_seconds", "start s"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pppoe", type=int, default=5000)
    parser.add_argument("--streams", default="100,1000,5000", help="comma-separated K values")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per K")
    args = parser.parse_args(argv)
    if args.serve_sim:
        serve_sim(args.pppoe)
        return 0

    ks = [int(k) for k in args.streams.split(",")]
    threading.stack_size(256 * 1024)  # one consumer thread per stream
    sim = SimProcess("bench.routeros_streams", ["--serve-sim", "--pppoe", str(max(max(ks), args.pppoe))])
    rows: list[Row] = []
    try:
        for k in ks:
            rows.append(run_one(sim, k, args.seconds))
            print(f"K={k} done", file=sys.stderr, flush=True)
    finally:
        sim.stop()
    print(table(rows, COLUMNS))
    path = write_results("routeros_streams", rows, settings={"seconds": args.seconds, "streams": ks})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
