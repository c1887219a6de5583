"""Chaos bench: faults while monitors run and dashboards read (`make chaos`).

The deployment of bench/stack.py with a PRIVATE redis-server (faults never touch the
machine's shared Redis), two monitors workers (each sized to carry every monitor
alone), CHAOS_MONITORS (200) monitors started through the REST API, and five
WebSocket clients (bench/ws_clients.py: one reads everything, four read 10 customers
each) that reconnect with `last_id` whenever their socket dies. A witness in this
process reads the combined stream directly (XREAD, surviving Redis restarts), and a
sampler watches the slots in use every 0.2 s.

Faults, one after the other (CHAOS_FAULTS=name,name to choose), each once every
monitor produces again after the previous one:

    kill-worker      kill -9 a monitors worker (a replacement worker is started after)
    term-worker      SIGTERM the other one: a rolling restart (handover), replaced after
    redis-restart    kill -9 Redis and start it empty (data lost)
    redis-freeze     Redis frozen (SIGSTOP) for CHAOS_REDIS_FREEZE (20) s: every
                     connection hangs, then it answers again with its data
    web-kill         kill -9 the web process, start it again on the same port
    router-drop      the router closes every API connection at once
    router-stall     the router stops answering for CHAOS_ROUTER_STALL (10) s
    pppoe-drop       20 PPPoE sessions end (their interfaces vanish), back after 10 s
    redis-full       Redis maxmemory set just above what it uses for 10 s (noeviction)
    sentinel-failover  kill -9 the Redis master of a Sentinel deployment (master, replica,
                     three sentinels: harness/sentinel.py) and wait for the replica's
                     promotion; the old master is restarted and becomes a replica. This
                     fault runs on a stack of its own, built through Sentinel, after the
                     others; it also reports the entries lost (the gap entries' counts:
                     docs/architecture.md, Redis failover) and the gap frames clients got.

Per fault: samples the clients lost (entries the witness saw in Redis from the fault
to recovery that a client never received, after its resume by id), time until every
monitor produces again (from the fault; the recovery of a fault that lasts is also
given from its end), duplicate producers (a customer whose traffic entries interleave
two fences: must be 0), slots leaked once recovered (live leases that are not the one
lease of an open session: must be 0), monitors above the cap (the most slots in use
beyond MAX_CONCURRENT_MONITORS: must be 0), and what the operator saw (status events
by kind, with the most frequent reason). Table on stdout, JSON in bench/results/chaos.json.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.engine import dump_records
from bench.results import RESULTS_DIR, table, write_results
from bench.sim_process import SimProcess
from bench.stack import Stack, interrupt_once, run_main
from harness.hosts import leaked_slots
from harness.redis_server import PrivateRedis
from tasks import keys
from tasks.message import ROUTER_TYPES

LOG_DIR = RESULTS_DIR / "chaos-logs"

MONITORS = int(os.environ.get("CHAOS_MONITORS", "200"))
ALL_FAULTS = [
    "kill-worker",
    "term-worker",
    "redis-restart",
    "redis-freeze",
    "web-kill",
    "router-drop",
    "router-stall",
    "pppoe-drop",
    "redis-full",
    "sentinel-failover",
]
# Faults that need a stack whose processes reach Redis through Sentinel.
SENTINEL_FAULTS = {"sentinel-failover"}
FAULTS = [f.strip() for f in os.environ.get("CHAOS_FAULTS", ",".join(ALL_FAULTS)).split(",") if f.strip()]
REDIS_FREEZE = float(os.environ.get("CHAOS_REDIS_FREEZE", "20"))
ROUTER_STALL = float(os.environ.get("CHAOS_ROUTER_STALL", "10"))
RECOVERY_TIMEOUT = float(os.environ.get("CHAOS_RECOVERY_TIMEOUT", "120"))
CAP_HEADROOM = 10
ENV = {
    "MONITOR_LEASE_TTL": os.environ.get("CHAOS_LEASE_TTL", "10"),
    "MONITOR_RENEW_INTERVAL": "2",
    "RECONCILE_INTERVAL": "2",
    "MIKROTIK_TIMEOUT": "5",
    "MAX_CONCURRENT_MONITORS": str(MONITORS + CAP_HEADROOM),
}


@dataclass
class Entry:
    ms: int
    id: str
    customer: str
    session: str
    fence: str
    type: str
    reason: str
    lost: int = 0  # a gap entry's count of the session's missing seqs


# A new client of the stack's Redis (socket timeout, connect timeout): plain or Sentinel.
Connect = Callable[[float, float], redis.Redis]


class Witness:
    """Reads the combined stream as the relay does, on its own, through any Redis fault
    (a failover too: its client follows the sentinels)."""

    def __init__(self, connect: Connect) -> None:
        self.connect = connect
        self.entries: list[Entry] = []
        self.last_traffic: dict[str, int] = {}
        self.last_id = "0-0"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="witness", daemon=True)

    def start(self) -> Witness:
        client = self.connect(5.0, 2.0)
        newest: Any = client.xrevrange(keys.COMBINED_STREAM, count=1)
        self.last_id = newest[0][0].decode() if newest else "0-0"
        client.close()
        self.thread.start()
        return self

    def _run(self) -> None:
        client = self.connect(2.0, 1.0)
        while not self.stop.is_set():
            try:
                reply: Any = client.xread({keys.COMBINED_STREAM: self.last_id}, count=1000, block=500)
            except redis.RedisError:
                time.sleep(0.2)
                continue
            for _, items in reply or []:
                for raw_id, fields in items:
                    entry_id = raw_id.decode()
                    self.last_id = entry_id
                    f = {k.decode(): v.decode() for k, v in fields.items()}
                    if f.get("type") in ROUTER_TYPES:
                        continue  # the router watches' entries: no client here asks for them
                    entry = Entry(
                        int(entry_id.split("-")[0]),
                        entry_id,
                        f.get("customer_id", ""),
                        f.get("session_id", ""),
                        f.get("fence", ""),
                        f.get("type", ""),
                        f.get("reason", ""),
                        int(f.get("lost") or 0),
                    )
                    self.entries.append(entry)
                    if entry.type == "traffic":
                        self.last_traffic[entry.customer] = entry.ms
        client.close()

    def all_producing_since(self, customers: list[str], since_ms: int) -> bool:
        return all(self.last_traffic.get(c, 0) > since_ms for c in customers)


class SlotSampler:
    """The most slots in use seen, every 0.2 s (errors while Redis is away are skipped)."""

    def __init__(self, connect: Connect) -> None:
        self.connect = connect
        self.peak = 0
        self.stop = threading.Event()
        threading.Thread(target=self._run, name="slots", daemon=True).start()

    def reset(self) -> None:
        self.peak = 0

    def _run(self) -> None:
        from tasks.semaphore import Semaphore

        semaphore = Semaphore(self.connect(1.0, 1.0))
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, semaphore.in_use())
            except redis.RedisError:
                pass
            time.sleep(0.2)


@dataclass
class FaultRow:
    fault: str
    lasted_s: float = 0.0
    recovered_s: float = float("nan")  # fault start -> every monitor produces again
    recovered_after_end_s: float = float("nan")
    lost_by_clients: int = 0
    client_dup_frames: int = 0
    client_reconnects: int = 0
    duplicate_producers: int = 0
    slots_leaked: int = 0
    above_cap: int = 0
    entries_lost: int = 0  # seqs declared missing by gap entries in the window
    gap_frames: int = 0  # gap entries the clients received
    operator_saw: dict[str, int] = field(default_factory=dict)
    top_reason: str = ""
    notes: list[str] = field(default_factory=list)
    # for the loss check at the end
    window_ms: tuple[int, int] = (0, 0)


class Chaos:
    def __init__(self, stack: Stack, clients: SimProcess, filters: list[list[str] | None], ids: list[str]):
        self.stack = stack
        self.clients = clients
        self.filters = filters
        self.ids = ids
        self.private = stack.private
        self.witness = Witness(stack.client).start()
        self.slots = SlotSampler(stack.client)
        self.by_username = {c["id"]: c["pppoe_username"] for c in stack.customers}
        self.spares = 0

    # -- the faults ---------------------------------------------------------------------

    def _replace_worker(self, dead: Any) -> None:
        self.stack.monitors.remove(dead)
        self.spares += 1
        # Sized to carry every monitor alone, like the two it joins.
        self.stack.start_monitors(MONITORS, 1, extra=50, tag=f"-spare{self.spares}")

    def _private(self) -> PrivateRedis:
        assert self.private is not None, "a Redis fault needs the stack's private redis-server"
        return self.private

    def inject(self, name: str) -> Callable[[], None] | None:
        """Start the fault; return what ends it (None: it ends by itself)."""
        stack, sim = self.stack, self.stack.sim
        if name == "kill-worker":
            victim = stack.monitors[0]
            victim.signal(signal.SIGKILL)
            victim.wait_exit(10)
            return lambda: self._replace_worker(victim)
        if name == "term-worker":
            victim = stack.monitors[-1]
            victim.signal(signal.SIGTERM)

            def replace_after_exit() -> None:
                victim.wait_exit(60)
                self._replace_worker(victim)

            return replace_after_exit
        if name == "redis-restart":
            self._private().restart_empty()
            return None
        if name == "redis-freeze":
            self._private().pause()
            time.sleep(REDIS_FREEZE)
            self._private().resume()
            return None
        if name == "sentinel-failover":
            deployment = stack.sentinel
            assert deployment is not None, "sentinel-failover runs on a Sentinel stack"
            deployment.kill_master()
            deployment.wait_promoted(60.0)

            def old_master_back() -> None:
                # It comes back (a replica, once the sentinels say so) while monitors recover.
                deployment.restart_old_master()

            return old_master_back
        if name == "web-kill":
            stack.web.kill9()
            stack.web.start()
            stack.web.wait_ready(timeout=60)
            return None
        if name == "router-drop":
            sim.ask("drop-connections")
            return None
        if name == "router-stall":
            sim.ask("stall on")
            time.sleep(ROUTER_STALL)
            sim.ask("stall off")
            return None
        if name == "pppoe-drop":
            victims = [self.by_username[c] for c in self.ids[:20]]
            for username in victims:
                sim.ask(f"drop-pppoe {username}")
            time.sleep(10)
            for username in victims:
                sim.ask(f"restore-pppoe {username}")
            return None
        if name == "redis-full":
            client = self._private().client()
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", str(used + 512 * 1024))
            time.sleep(10)
            client.config_set("maxmemory", "0")
            client.close()
            return None
        raise ValueError(f"unknown fault {name!r} (one of {', '.join(ALL_FAULTS)})")

    # -- one fault ------------------------------------------------------------------------

    def run(self, name: str) -> FaultRow:
        row = FaultRow(name)
        reconnects0 = sum(c["reconnects"] for c in self.clients.ask("stats")["clients"])
        self.slots.reset()
        t0 = time.time()
        t0_ms = int(t0 * 1000)
        end = self.inject(name)
        if end is not None:
            end()
        t_end = time.time()
        row.lasted_s = round(t_end - t0, 1)
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        end_ms = int(t_end * 1000)
        while not self.witness.all_producing_since(self.ids, end_ms):
            if time.monotonic() > deadline:
                silent = [c for c in self.ids if self.witness.last_traffic.get(c, 0) <= end_ms]
                row.notes.append(
                    f"{len(silent)} monitors not producing {RECOVERY_TIMEOUT:g}s after the fault"
                )
                break
            time.sleep(0.1)
        else:
            # every monitor's first sample after the fault ended
            firsts = self._first_traffic_after(end_ms)
            last = max(firsts.values())
            row.recovered_s = round((last - t0_ms) / 1000, 1)
            row.recovered_after_end_s = round((last - end_ms) / 1000, 1)
        time.sleep(3.0)  # let the last reservations settle before counting slots
        row.window_ms = (t0_ms - 1000, int(time.time() * 1000))
        row.above_cap = max(0, self.slots.peak - (MONITORS + CAP_HEADROOM))
        row.slots_leaked = self._leaked()
        entries = [e for e in self.witness.entries if row.window_ms[0] <= e.ms <= row.window_ms[1]]
        row.duplicate_producers = _interleaved(self.witness.entries, row.window_ms)
        row.entries_lost = sum(e.lost for e in entries if e.type == "gap")
        events = Counter(e.type for e in entries if e.type != "traffic")
        row.operator_saw = dict(events)
        reasons = Counter(f"{e.type}: {e.reason}" for e in entries if e.type != "traffic" and e.reason)
        row.top_reason = reasons.most_common(1)[0][0][:90] if reasons else ""
        row.client_reconnects = (
            sum(c["reconnects"] for c in self.clients.ask("stats")["clients"]) - reconnects0
        )
        print(f"{name}: recovered in {row.recovered_s}s", file=sys.stderr, flush=True)
        return row

    def _first_traffic_after(self, since_ms: int) -> dict[str, int]:
        firsts: dict[str, int] = {}
        for e in self.witness.entries:
            if e.type == "traffic" and e.ms > since_ms and e.customer not in firsts:
                firsts[e.customer] = e.ms
        return firsts

    def _leaked(self) -> int:
        """Live leases that are not the one lease of an open session."""
        return leaked_slots(self.stack.redis)

    def client_losses(self, rows: list[FaultRow]) -> None:
        """Every fault window's entries (the witness's) that a client never received."""
        time.sleep(3.0)
        records = dump_records(self.clients)
        got: dict[int, Counter[str]] = defaultdict(Counter)
        for r in records:
            got[r[0]][r[1]] += 1
        for row in rows:
            lo, hi = row.window_ms
            for index, wanted in enumerate(self.filters):
                want = set(wanted) if wanted else None
                for e in self.witness.entries:
                    if lo <= e.ms <= hi and (want is None or e.customer in want):
                        n = got[index].get(e.id, 0)
                        if n == 0:
                            row.lost_by_clients += 1
                        elif n > 1:
                            row.client_dup_frames += n - 1
                        if e.type == "gap":
                            row.gap_frames += min(n, 1)


def _interleaved(entries: list[Entry], window: tuple[int, int]) -> int:
    """Customers whose traffic entries in the window interleave two producers (fence A,
    then B, then A again): two claimants publishing for one customer at once."""
    by_customer: dict[str, list[str]] = defaultdict(list)
    for e in entries:
        if e.type == "traffic" and window[0] <= e.ms <= window[1]:
            by_customer[e.customer].append(f"{e.session}/{e.fence}")
    count = 0
    for producers in by_customer.values():
        finished: set[str] = set()
        current = None
        for p in producers:
            if p != current:
                if p in finished:
                    count += 1
                    break
                if current is not None:
                    finished.add(current)
                current = p
    return count


COLUMNS = [
    ("fault", "fault"),
    ("lasted_s", "lasted s"),
    ("recovered_s", "all producing s"),
    ("recovered_after_end_s", "after its end s"),
    ("lost_by_clients", "lost by clients"),
    ("client_reconnects", "client reconnects"),
    ("entries_lost", "entries lost"),
    ("gap_frames", "gap frames"),
    ("duplicate_producers", "dup producers"),
    ("slots_leaked", "slots leaked"),
    ("above_cap", "above cap"),
    ("events", "operator saw"),
]


def main() -> int:
    unknown = [f for f in FAULTS if f not in ALL_FAULTS]
    if unknown:
        print(f"unknown faults {unknown}; choose from {', '.join(ALL_FAULTS)}", file=sys.stderr)
        return 2
    threading.stack_size(512 * 1024)
    rows: list[FaultRow] = []
    with interrupt_once():
        plain = [f for f in FAULTS if f not in SENTINEL_FAULTS]
        failovers = [f for f in FAULTS if f in SENTINEL_FAULTS]
        if plain:
            rows += _run_faults(plain, sentinel=False)
        if failovers:
            rows += _run_faults(failovers, sentinel=True)
    shown = [
        {**r.__dict__, "events": ", ".join(f"{k} {v}" for k, v in sorted(r.operator_saw.items()))}
        for r in rows
    ]
    print(table(shown, COLUMNS))
    for r in rows:
        if r.top_reason:
            print(f"{r.fault}: most said: {r.top_reason}")
        for note in r.notes:
            print(f"{r.fault}: {note}")
    path = write_results("chaos", rows, settings={**ENV, "monitors": MONITORS, "ws_clients": 5})
    print(f"wrote {path}")
    return 0


def _run_faults(faults: list[str], *, sentinel: bool) -> list[FaultRow]:
    """One stack (a private Redis, or a Sentinel deployment), the faults one after the other."""
    rows: list[FaultRow] = []
    log_dir = LOG_DIR / ("sentinel" if sentinel else "plain")
    with Stack(
        pppoe=MONITORS + 30, log_dir=log_dir, env=ENV, private_redis=not sentinel, sentinel=sentinel
    ) as stack:
        ids = [c["id"] for c in stack.customers[:MONITORS]]
        filters: list[list[str] | None] = [None] + [ids[i::4][:10] for i in range(4)]
        stack.start_monitors(MONITORS * 2, 2, extra=50)
        clients = stack.ws_clients(filters)
        try:
            clients.ask("ready 30")
            for i in range(0, len(ids), 500):
                response = stack.http.post("/api/monitor/start-many", json={"customer_ids": ids[i : i + 500]})
                response.raise_for_status()
            chaos = Chaos(stack, clients, filters, ids)
            if not _wait(lambda: chaos.witness.all_producing_since(ids, 0), 120):
                print("not every monitor started", file=sys.stderr)
            time.sleep(3.0)
            for name in faults:
                rows.append(chaos.run(name))
                time.sleep(3.0)
            chaos.client_losses(rows)
            chaos.witness.stop.set()
            chaos.slots.stop.set()
        finally:
            clients.stop()
    return rows


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


if __name__ == "__main__":
    run_main(main)
