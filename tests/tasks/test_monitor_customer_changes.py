"""A customer changes while monitored: suspended, deleted, re-pointed to another PPPoE
username. Real worker, beat and simulator; the database is changed the way an admin
panel or a billing system would, behind the engine's back.

Suspended and deleted customers are noticed by the reconciler within an interval:
the monitor stops with the reason, publishes `stopped`, frees its slot, and nothing
restarts it. A changed PPPoE username is picked up by the session's next attempt
(README, Customers that change while monitored).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from harness.polling import wait_for
from tasks import keys, service, sessions
from tests.tasks.engine import Engine
from tests.tasks.monitors import live_tokens, session_row, start_monitor, wait_next_attempt
from tests.tasks.streams import customer_entries, matches, sample_after, wait_entry

RECONCILE = 1.0  # RECONCILE_INTERVAL in every process (CELERY_ENV)


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=8, hotspot=2, static=0)
    eng.start_worker("monitors", concurrency=8, name="changes-a")
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


def _sql(statement: str, **params: object) -> None:
    with sessions.db() as s:
        s.execute(text(statement), params)


def _running(eng: Engine, customer_id: str) -> str:
    return start_monitor(eng, customer_id, requested_by="changes-test", timeout=5.0).session_id


def _assert_stopped_for_good(eng: Engine, customer_id: str, session_id: str, reason: str) -> None:
    """`stopped` with `reason`, no sample after it, its slot free, and it stays so."""
    stopped = wait_entry(
        eng.redis,
        customer_id,
        matches(type="stopped", session_id=session_id),
        RECONCILE + 5.0,
        f"stopped ({reason})",
    )
    assert stopped["reason"] == reason
    wait_for(
        lambda: not any(t.startswith(session_id) for t in live_tokens()), 5.0, what="the slot to be freed"
    )
    # Two more reconcile passes: nothing restarts it, nothing samples for it.
    last = customer_entries(eng.redis, customer_id)[-1]
    _more_passes(eng, 2)
    after = customer_entries(eng.redis, customer_id)
    assert after[-1]["id"] == last["id"], after[-3:]
    assert not any(t.startswith(session_id) for t in live_tokens())


def _more_passes(eng: Engine, count: int) -> None:
    """Wait until the reconciler's heartbeat has moved `count` times."""
    seen: list[bytes] = []

    def moved() -> bool:
        beat = eng.redis.get(keys.RECONCILER_LAST_RUN)
        if isinstance(beat, bytes) and (not seen or seen[-1] != beat):
            seen.append(beat)
        return len(seen) > count

    wait_for(moved, (count + 1) * RECONCILE + 3.0, what=f"{count} more reconcile passes")


def test_monitor_customer_suspended_stops_with_reason_and_frees_slot(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    session_id = _running(engine, cid)
    _sql("UPDATE customers SET status = 'suspended' WHERE id = :id", id=cid)
    try:
        _assert_stopped_for_good(engine, cid, session_id, "customer suspended")
        row = session_row(session_id)
        assert (row.desired_state, row.actual_state, row.stop_reason) == (
            "stopped",
            "stopped",
            "customer suspended",
        )
    finally:
        _sql("UPDATE customers SET status = 'active' WHERE id = :id", id=cid)


def test_monitor_customer_deleted_stops_with_reason_and_frees_slot(engine: Engine) -> None:
    # A hotspot customer: the polled queue source, the other kind of monitor.
    cid = engine.customer_id(engine.usernames("hotspot")[0])
    session_id = _running(engine, cid)
    # ON DELETE CASCADE takes the session row with it: only the lease is left.
    _sql("DELETE FROM customers WHERE id = :id", id=cid)
    assert sessions.get(session_id) is None
    _assert_stopped_for_good(engine, cid, session_id, "customer deleted")


def test_monitor_customer_new_pppoe_username_is_watched_from_the_next_attempt(engine: Engine) -> None:
    pppoe = engine.usernames("pppoe")
    cid, other = engine.customer_id(pppoe[1]), engine.customer_id(pppoe[2])
    new_name = engine.customers[pppoe[2]]["pppoe_username"]
    running = start_monitor(engine, cid, requested_by="changes-test", timeout=5.0)
    session_id = running.session_id
    # The customer's PPPoE account is renamed on the router (the other customer gave it up).
    _sql("DELETE FROM customers WHERE id = :id", id=other)
    _sql("UPDATE customers SET pppoe_username = :u WHERE id = :id", u=new_name, id=cid)
    # The running attempt keeps what it resolved at its start...
    first = wait_entry(
        engine.redis,
        cid,
        sample_after(session_id, 3),
        10.0,
        "more samples of attempt 1",
    )
    assert first["interface"] == f"<pppoe-{pppoe[1]}>"
    # ...and the next attempt (here after a worker hand-over) watches the new name.
    engine.hand_over("changes-a", to="changes-b")
    sample = wait_next_attempt(engine, running, RECONCILE + 15.0)
    assert sample["interface"] == f"<pppoe-{new_name}>"
    assert session_row(session_id).attempt == 2
    service.stop(cid, requested_by="changes-test")
    wait_entry(engine.redis, cid, matches(type="stopped", session_id=session_id), 5.0, "stopped")
