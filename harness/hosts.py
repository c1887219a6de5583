"""Many routers and many worker hosts on one machine: what the multi-host affinity test
(tests/tasks/test_affinity_hosts.py) and its bench (bench/affinity.py) both start and read.

    routers   a simulator per router (routeros.simulator in-process, or a bench child
              process: anything with `port` and `customers()`), added as a routers row
              with its PPPoE customers (add_simulated_router)
    hosts     monitors worker processes named `mK@hostN` (Hosts): a "host" is a node
              name's right part, so killing one kills its processes only
    reading   our API sessions per router from its /user/active (api_sessions), each
              customer's newest stream entry (newest), "all these produce again after t"
              (producing_since, wait_producing), duplicate producers (fences_out_of_order),
              slots that are not the one lease of an open session (leaked_slots)

Everything reads this process's settings (DATABASE_URL, REDIS_URL): the caller applies
them first (tests/tasks/engine.py, bench/stack.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import redis

from harness.polling import wait_for
from harness.seed import ROUTER_PASSWORD
from harness.workers import CeleryProcess, worker


class SimulatedRouter(Protocol):
    """A RouterOS simulator as this module uses it (routeros.simulator.Simulator, or
    bench.sim_process.SimProcess running bench.engine_sim)."""

    port: int

    def customers(self) -> dict[str, Any]: ...


def host_nodes(hosts: int, per_host: int = 2, first_host: int = 1) -> dict[str, list[str]]:
    """Node names per host: {"host1": ["m1@host1", "m2@host1"], ...}; process numbers
    continue across hosts (host h's first process is m{(h - 1) * per_host + 1})."""
    return {
        f"host{h}": [f"m{(h - 1) * per_host + k}@host{h}" for k in range(1, per_host + 1)]
        for h in range(first_host, first_host + hosts)
    }


def add_simulated_router(
    router_id: str, sim: SimulatedRouter, *, max_api_sessions: int | None = None, limit: int | None = None
) -> list[str]:
    """A routers row for the simulator (it takes ROUTER_PASSWORD) and a customers row for
    each of its PPPoE customers (the first `limit`), in one transaction; their ids in the
    simulator's order. Usernames are prefixed with the router id (simulators share
    theirs); each is watched as its PPPoE username on its own router."""
    from models import Customer, Router
    from tasks import sessions

    pppoe = [c for c in sim.customers()["customers"] if c["service_type"] == "pppoe"][:limit]
    ids = []
    with sessions.db() as s:
        s.add(
            Router(
                id=router_id,
                name=router_id,
                host="127.0.0.1",
                port=sim.port,
                password=ROUTER_PASSWORD,
                max_api_sessions=max_api_sessions,
            )
        )
        for c in pppoe:
            customer = Customer(
                id=uuid.uuid4(),
                mikrotik_id=router_id,
                username=f"{router_id}.{c['username']}",
                name=c["name"],
                service_type="pppoe",
                pppoe_username=c["username"],
                status="active",
            )
            s.add(customer)
            ids.append(str(customer.id))
    return ids


class Hosts:
    """Monitors worker processes under simulated host names, all consuming `monitors`
    (plus the router queues their affinity keepers add). `started(proc)` is told of each
    process as it starts (the caller's list of processes to stop)."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        concurrency: int,
        started: Callable[[CeleryProcess], object] | None = None,
    ) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.concurrency = concurrency
        self._started = started
        self.workers: dict[str, CeleryProcess] = {}  # node name -> process

    def start(self, nodes: Iterable[str], timeout: float = 60.0) -> list[CeleryProcess]:
        """Start the processes all at once, then wait until each is ready."""
        procs = []
        for node in nodes:
            proc = worker(self.env, self.log_dir, queues="monitors", concurrency=self.concurrency, name=node)
            proc.start()
            if self._started is not None:
                self._started(proc)
            self.workers[node] = proc
            procs.append(proc)
        for proc in procs:
            proc.wait_ready(timeout)
        return procs

    def kill(self, nodes: Iterable[str], signum: int, timeout: float = 10.0) -> None:
        """Send `signum` (SIGKILL: a host lost) to each and wait until all have exited."""
        nodes = list(nodes)
        for node in nodes:
            self.workers[node].signal(signum)
        for node in nodes:
            self.workers[node].wait_exit(timeout)

    def pids(self) -> dict[str, int]:
        """Node name -> pid of every process still running."""
        return {node: proc.pid for node, proc in self.workers.items() if proc.alive()}


def api_sessions(port: int, password: str = ROUTER_PASSWORD, host: str = "127.0.0.1") -> int:
    """Our API sessions on the router, as its /user/active lists them (minus this read's own)."""
    from routeros import RouterClient, RouterEndpoint

    client = RouterClient(RouterEndpoint(host=host, port=port, username="admin", password=password))
    client.connect()
    try:
        return len(client.call("/user/active/print", queries=("?via=api",), timeout=5.0)) - 1
    finally:
        client.close()


def redis_ms(client: redis.Redis) -> int:
    """Redis's clock now, in milliseconds: the clock stream ids are taken on."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _decoded(reply: Any) -> list[dict[str, Any]]:
    from tasks.message import decode_entry

    return [decode_entry(entry_id, fields) for entry_id, fields in reply or []]


def newest(client: redis.Redis, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each customer's newest stream entry, decoded ({} for an empty stream)."""
    from tasks import keys

    customer_ids = list(customer_ids)
    pipe = client.pipeline(transaction=False)
    for cid in customer_ids:
        pipe.xrevrange(keys.customer_stream(cid), count=1)
    return {cid: (_decoded(reply) or [{}])[0] for cid, reply in zip(customer_ids, pipe.execute())}


def producing_since(client: redis.Redis, customer_ids: Iterable[str], since_ms: int) -> bool:
    """Whether every customer's newest entry is a sample Redis took after `since_ms`."""
    return all(
        e.get("type") == "traffic" and int(e["id"].split("-")[0]) > since_ms
        for e in newest(client, customer_ids).values()
    )


def wait_producing(client: redis.Redis, customer_ids: list[str], since_ms: int, timeout: float) -> float:
    """Wait until every customer's newest entry is a sample taken after `since_ms`; the
    seconds it took."""
    started = time.monotonic()
    wait_for(
        lambda: producing_since(client, customer_ids, since_ms),
        timeout,
        step=0.25,
        what=f"{len(customer_ids)} monitors to produce",
    )
    return time.monotonic() - started


def fences_out_of_order(
    client: redis.Redis, customer_ids: Iterable[str], since_ms: int
) -> dict[str, list[int]]:
    """Customers whose samples since `since_ms` do not have non-decreasing fences (two
    producers at once: an older claimant wrote after a newer one), with the fences."""
    from tasks import keys

    customer_ids = list(customer_ids)
    pipe = client.pipeline(transaction=False)
    for cid in customer_ids:
        pipe.xrange(keys.customer_stream(cid), min=str(since_ms))
    out = {}
    for cid, reply in zip(customer_ids, pipe.execute()):
        fences = [int(e["fence"]) for e in _decoded(reply) if e.get("type") == "traffic"]
        if fences != sorted(fences):
            out[cid] = fences
    return out


def leaked_slots(client: redis.Redis) -> int:
    """Semaphore slots that are not the one lease of an open session (its current attempt)."""
    from tasks import sessions
    from tasks.lifecycle import Token
    from tasks.semaphore import Semaphore

    open_rows = {str(r.id): r for r in sessions.open_sessions()}
    seen: set[str] = set()
    leaked = 0
    for holder in Semaphore(client).holders():
        token = Token.parse(holder.token)
        row = open_rows.get(token.session_id)
        if row is None or row.attempt != token.attempt or token.session_id in seen:
            leaked += 1
        seen.add(token.session_id)
    return leaked


def status_by_customer() -> dict[str, dict[str, Any]]:
    """GET /api/monitor/status's monitors (tasks.service.status), by customer id."""
    from tasks import service

    return {m["customer_id"]: m for m in service.status()["monitors"]}


def consuming(holds: list[tuple[str, str]]) -> bool:
    """Whether every (node, router) pair's worker consumes the router's queue now (Celery's
    inspect active_queues): a hold in Redis is consumed only once the worker has run its
    keeper's add_consumer, so starts sent before that all go to the older holders."""
    from tasks import app, keys

    nodes = sorted({n for n, _ in holds})
    if not nodes:
        return True
    replies = app.control.inspect(destination=nodes, timeout=2.0).active_queues() or {}
    queues = {node: {q["name"] for q in replies.get(node) or []} for node in nodes}
    return all(keys.router_queue(r) in queues[n] for n, r in holds)
