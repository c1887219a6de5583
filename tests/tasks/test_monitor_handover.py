"""SIGTERM handover, measured: the lease is released at once and the stream gap is short.

The lease TTL here is long (30 s) on purpose: a handed-over lease must be gone well
before it could have expired, and the next attempt must start within about one
reconcile interval plus its start time, far below the TTL that a crash costs. So
a lease left to expire, or a restart that waited for it, fails this test.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from harness.polling import wait_for
from tasks import service
from tasks.reconciler import GRACE_SECONDS
from tasks.semaphore import Semaphore
from tests.tasks.engine import Engine
from tests.tasks.monitors import live_tokens, session_row, start_monitors, token, wait_next_attempt
from tests.tasks.streams import id_ms, session_samples
from tests.tasks.threads import Sampler

TTL = 30.0
RENEW = 2.0
RECONCILE = 1.0  # RECONCILE_INTERVAL in CELERY_ENV
MONITOR_INTERVAL = 1.0
# A warm shutdown: every loop ends within a second, publishes, releases (a loaded machine).
RELEASE_BOUND = 3.0
# Worker pickup, claim, router subscription and the first sample, on a loaded 2-core machine.
START_SLACK = 5.0
# The gap readers see: the old attempt's last sample may be up to one interval before
# the SIGTERM; then the exit, one reconcile interval (plus the grace a just-touched row
# gets), and the start of the next attempt.
GAP_BOUND = MONITOR_INTERVAL + RELEASE_BOUND + RECONCILE + GRACE_SECONDS + START_SLACK
assert GAP_BOUND < TTL / 2, "the bound must tell a released lease from an expired one"


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(
        pppoe=3, hotspot=0, static=0, MONITOR_LEASE_TTL=str(TTL), MONITOR_RENEW_INTERVAL=str(RENEW)
    )
    eng.start_worker("default", concurrency=2, name="ho-ctl")
    eng.start_beat()
    yield eng


class LeaseWatch(Sampler):
    """When each lease disappears, on this process's monotonic clock (polled every 20 ms)."""

    def __init__(self, client: redis.Redis, tokens: set[str]) -> None:
        super().__init__()
        self.sem = Semaphore(client)
        self.gone: dict[str, float] = {}
        self._tokens = tokens

    def sample(self) -> None:
        live = {h.token for h in self.sem.holders()}
        now = time.monotonic()
        for t in self._tokens - live - set(self.gone):
            self.gone[t] = now


def test_monitor_sigterm_handover_releases_the_lease_at_once_and_the_gap_is_one_reconcile(
    engine: Engine,
) -> None:
    leaving = engine.start_worker("monitors", concurrency=4, name="ho-leaving")
    cids = [engine.customer_id(u) for u in engine.usernames("pppoe")]
    infos = start_monitors(engine, cids)
    staying = engine.start_worker("monitors", concurrency=4, name="ho-staying")
    first = {token(i.session_id, 1) for i in infos.values()}
    assert live_tokens(engine.redis) == first

    with LeaseWatch(engine.redis, first) as watch:
        leaving.signal(signal.SIGTERM)
        sigterm = time.monotonic()
        leaving.wait_exit(10)
        for info in infos.values():
            wait_next_attempt(engine, info, GAP_BOUND + 5.0)
        wait_for(lambda: set(watch.gone) == first, 2.0, what="every old lease seen gone")

    # Released, not expired: each old lease was gone within seconds of the SIGTERM, far
    # below its 30 s TTL, and the worker said so.
    released_after = {t: watch.gone[t] - sigterm for t in first}
    assert max(released_after.values()) < RELEASE_BOUND, released_after
    for t in first:
        assert f"monitor {t} handed over: lease released" in leaving.log()
    # The gap in each customer's stream: the last sample of attempt 1 to the first of
    # attempt 2, both stamped by Redis.
    gaps = {}
    for cid, info in infos.items():
        samples = session_samples(engine.redis, cid, info.session_id)
        old_fence = samples[0]["fence"]
        last_old = max(id_ms(e["id"]) for e in samples if e["fence"] == old_fence)
        first_new = min(id_ms(e["id"]) for e in samples if e["fence"] != old_fence)
        gaps[cid] = (first_new - last_old) / 1000
        assert session_row(info.session_id).attempt == 2
        assert f"monitor-{info.session_id}-2" in staying.log()
    print(
        f"\nhandover: leases gone after {sorted(round(v, 2) for v in released_after.values())} s;"
        f" stream gaps {sorted(round(g, 2) for g in gaps.values())} s (bound {GAP_BOUND:g} s, TTL {TTL:g} s)"
    )
    assert max(gaps.values()) <= GAP_BOUND, gaps
    for cid in cids:
        service.stop(cid)
    wait_for(lambda: not live_tokens(engine.redis), 5.0, what="all slots free")
