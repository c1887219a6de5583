"""Redis Sentinel failover under load, with real processes.

One master, one replica, three sentinels (harness/sentinel.py); two monitors workers, a
control worker, beat and uvicorn, all configured through Sentinel only (REDIS_SENTINELS,
REDIS_SENTINEL_MASTER); 200 monitors and 5 WebSocket clients reading `/ws`. The master
is killed with SIGKILL. Then, on the promoted replica: every monitor produces again
within a deadline; every seq missing from a session's stream is declared by a gap
entry, and every hole a client would see (live, and resuming by id from before the
kill) reaches it as a gap frame; no two producers of one customer; after the
reconciler's next pass one slot per monitor, none leaked or doubled; the old master,
restarted, becomes a replica and the counts stay the same; Flower's broker view answers
through Sentinel (docs/architecture.md, Redis failover). The figures are printed (`-s`)
for docs/scaling.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from common import redis_clients
from harness.failover import FeedReader, audit_slots, audit_stream, resume_from
from harness.polling import wait_for
from harness.sentinel import SentinelDeployment
from harness.web import Uvicorn
from settings import load_settings
from tasks import keys
from tests.tasks.engine import Engine
from tests.tasks.flower import start_flower
from tests.tasks.streams import redis_ms, stream_entries
from web.relay import parse_id

FLOWER_USER, FLOWER_PASSWORD = "noc", "flower-test-password"
MONITORS = 200
CLIENTS = 5
# The target is 30 s (issue 21); the deadline has headroom for a loaded 2-core machine.
RECOVERY_DEADLINE = 60.0
# A lease outlives the failover (~2-4 s here): monitors keep their leases and fences
# across it, which is what is under test (a lost lease is the reconciler's, tested elsewhere).
ENV = {
    "MONITOR_LEASE_TTL": "8",
    "MONITOR_RENEW_INTERVAL": "1",
    "MAX_CONCURRENT_MONITORS": "250",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Stack:
    eng: Engine
    deployment: SentinelDeployment
    web: Uvicorn
    client: redis.Redis  # through Sentinel, as the processes connect
    sessions: dict[str, str]  # customer id -> session id
    flower: str  # its base URL (basic auth FLOWER_USER:FLOWER_PASSWORD)


@pytest.fixture(scope="module")
def stack(engine_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    eng: Engine = engine_factory(pppoe=MONITORS, hotspot=0, static=0)
    deployment = SentinelDeployment(tmp_path_factory.mktemp("sentinel"))
    web: Uvicorn | None = None
    try:
        deployment.start()
        eng.env.update({**deployment.env(), **ENV})
        settings = load_settings(eng.env, env_file="/nonexistent/.env")
        client = redis_clients.sync_client(
            redis_clients.ClientOptions(socket_timeout=5, socket_connect_timeout=2), settings
        )
        for host in ("host1", "host2"):
            eng.start_worker("monitors", concurrency=MONITORS // 2 + 10, name=f"monitors@{host}")
        eng.start_worker("default", concurrency=2, name="control")
        eng.start_beat()
        web = Uvicorn(eng.env, eng.tmp / "web.log").start()
        web.wait_ready()
        customers = [eng.customer_id(u) for u in eng.usernames("pppoe")]
        reply = httpx.post(f"{web.url}/api/monitor/start-many", json={"customer_ids": customers}, timeout=60)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer["started"] == MONITORS, answer
        sessions = {r["customer_id"]: r["session_id"] for r in answer["results"]}
        flower = start_flower(eng, eng.tmp, FLOWER_USER, FLOWER_PASSWORD)
        yield Stack(eng, deployment, web, client, sessions, flower)
        client.close()
    finally:
        if web is not None:
            web.stop()
        eng.stop_all()
        deployment.stop()


def _newest_traffic_ms(client: redis.Redis, customers: list[str]) -> dict[str, int]:
    """Each customer's newest traffic entry's id (ms), through one pipeline."""
    with client.pipeline(transaction=False) as pipe:
        for cid in customers:
            pipe.xrevrange(keys.customer_stream(cid), count=5)
        replies = pipe.execute()
    out: dict[str, int] = {}
    for cid, entries in zip(customers, replies):
        for entry_id, fields in entries:
            if fields.get(b"type") == b"traffic":
                out[cid] = int(entry_id.split(b"-")[0])
                break
    return out


def _all_producing_since(client: redis.Redis, customers: list[str], since_ms: int) -> bool:
    try:
        newest = _newest_traffic_ms(client, customers)
    except redis.RedisError:
        return False
    return all(newest.get(c, 0) > since_ms for c in customers)


def _master_load(deployment: SentinelDeployment) -> tuple[float, float, int]:
    """(now, the master's CPU seconds, commands processed so far): for docs/scaling.md."""
    with deployment.master().client() as direct:
        cpu: Any = direct.info("cpu")
        stats: Any = direct.info("stats")
    return (
        time.monotonic(),
        float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        int(stats["total_commands_processed"]),
    )


def _first_traffic_after(client: redis.Redis, cid: str, since_ms: int) -> int:
    for entry_id, fields in stream_entries(
        client.xrange(keys.customer_stream(cid), min=str(since_ms + 1), count=50)
    ):
        if fields.get(b"type") == b"traffic":
            return int(entry_id.split(b"-")[0])
    raise AssertionError(f"no sample of {cid} after {since_ms}")


def test_sentinel_failover_every_monitor_resumes_and_every_hole_is_reported(stack: Stack) -> None:
    client, customers = stack.client, list(stack.sessions)
    t0 = time.monotonic()
    phases: dict[str, float] = {}
    started = redis_ms(client)
    wait_for(
        lambda: _all_producing_since(client, customers, 0),
        60.0,
        what="every monitor's first sample",
        step=0.5,
    )
    share = len(customers) // CLIENTS
    readers = [
        FeedReader(f"ws://127.0.0.1:{stack.web.port}", customers[i * share : (i + 1) * share])
        for i in range(CLIENTS)
    ]
    for reader in readers:
        reader.start()
    wait_for(
        lambda: all(len(r.snapshot_last()[1]) == share for r in readers),
        30.0,
        what="every client to see each of its customers",
        step=0.2,
    )
    load0 = _master_load(stack.deployment)
    wait_for(lambda: redis_ms(client) > started + 3000, 10.0, what="a few seconds of samples", step=0.2)
    load1 = _master_load(stack.deployment)
    seconds = load1[0] - load0[0]
    redis_cpu, redis_ops = (load1[1] - load0[1]) / seconds, (load1[2] - load0[2]) / seconds

    phases["running"] = time.monotonic() - t0
    at_kill = [r.snapshot_last() for r in readers]
    kill_ms = int(time.time() * 1000)
    old = stack.deployment.kill_master()
    promoted = stack.deployment.wait_promoted(30.0)
    promoted_s = time.time() - kill_ms / 1000
    # The old master comes back while the monitors recover (it takes the sentinels a while
    # to turn it into a replica): checked at the end.
    stack.deployment.restart_old_master()

    wait_for(
        lambda: _all_producing_since(client, customers, kill_ms),
        RECOVERY_DEADLINE,
        what="every monitor to produce on the promoted master",
        step=0.5,
    )
    recovery_s = max(_first_traffic_after(client, c, kill_ms) - kill_ms for c in customers) / 1000
    # Clients have read past the recovery point before we look at what they saw.
    mark = max(_newest_traffic_ms(client, customers).values())
    wait_for(
        lambda: all(parse_id(r.snapshot_last()[0] or "0") >= (mark, 0) for r in readers),
        30.0,
        what="every client to read past the recovery",
        step=0.2,
    )
    for reader in readers:
        reader.stop()
    phases["recovered"] = time.monotonic() - t0

    # The streams on the promoted master: every missing seq declared by a gap entry, one producer.
    audits = {c: audit_stream(client, c, stack.sessions[c], kill_ms - 10_000) for c in customers}
    lost = sum(a.lost for a in audits.values())
    gap_entries = sum(a.gap_entries for a in audits.values())
    silent = {c: a.silent for c, a in audits.items() if a.silent}
    duplicates = [c for c, a in audits.items() if a.interleaved]
    assert not silent, f"seqs missing with no gap entry: {silent}"
    assert not duplicates, f"two producers of {duplicates}"

    phases["streams"] = time.monotonic() - t0
    # What the clients saw live, and what each gets resuming by id from before the kill.
    live_holes = {i: r.seen.silent_holes() for i, r in enumerate(readers)}
    assert not any(live_holes.values()), f"holes no gap frame reported, live: {live_holes}"
    gap_frames = sum(len(g) for r in readers for g in r.seen.gaps.values())
    resumed_gaps = 0
    for reader, (last_id, last_seqs) in zip(readers, at_kill):
        assert last_id is not None
        seen = resume_from(reader.base, reader.customers, last_id, str(mark), 30.0)
        holes = seen.silent_holes(since=last_seqs)
        assert not holes, f"holes no gap frame reported on resume from {last_id}: {holes}"
        assert seen.horizon_gaps == 0, "a resume within retention reported trimmed entries"
        resumed_gaps += sum(len(g) for g in seen.gaps.values())
    assert (lost == 0) == (gap_frames == 0), (lost, gap_frames)

    phases["resumed"] = time.monotonic() - t0
    # Slots, after the reconciler's next pass on the promoted master.
    passed_from = redis_ms(client)
    wait_for(
        lambda: int(client.get(keys.RECONCILER_LAST_RUN) or 0) > passed_from + 1000,
        30.0,
        what="a reconciler pass after the recovery",
        step=0.2,
    )
    slots = audit_slots(client)
    assert slots.holders == MONITORS and slots.customers == MONITORS and slots.orphans == 0, slots
    assert slots.router_members == MONITORS, slots

    # The old master, back: a replica of the promoted one, holding the same slots.
    stack.deployment.wait_old_master_replica(45.0)
    assert old.role() == "slave" and promoted.role() == "master"
    with old.client() as replica:
        wait_for(
            lambda: replica.zcard(keys.GLOBAL_SLOTS) == client.zcard(keys.GLOBAL_SLOTS),
            15.0,
            what="the old master to hold the promoted master's slots",
        )
    assert audit_slots(client) == slots
    # Flower, through Sentinel too: its broker view (queue lengths) asks the promoted master.
    queues = httpx.get(f"{stack.flower}/api/queues/length", auth=(FLOWER_USER, FLOWER_PASSWORD), timeout=10)
    assert queues.status_code == 200, queues.text
    assert "monitors" in {q["name"] for q in queues.json()["active_queues"]}, queues.text
    phases["replica"] = time.monotonic() - t0
    print(
        f"\nsentinel failover: promoted after {promoted_s:.1f}s, every monitor producing after "
        f"{recovery_s:.1f}s; {lost} entries lost in {gap_entries} gap entries; gap frames "
        f"{gap_frames} live, {resumed_gaps} on resume; reconnects "
        f"{sum(r.reconnects for r in readers)}; duplicates {len(duplicates)}; slots {slots}; "
        f"phases {', '.join(f'{k} {v:.1f}s' for k, v in phases.items())}; the master before the "
        f"kill, for {MONITORS} monitors and {CLIENTS} clients: {100 * redis_cpu:.0f} % of a core, "
        f"{redis_ops:.0f} commands/s"
    )
