"""What a monitor run does with the message it is given: duplicates, stale messages,
customers that changed while the message waited.

A broker redelivery (or any duplicate send) hands the same message (same token, same
fence) to a second worker process. Only the run that claims the reservation may
produce; the other ends at once, says so in its log, and takes nothing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from harness.workers import CeleryProcess
from tasks import keys, lifecycle, runtime, service
from tasks.app import app
from tasks.lifecycle import Token
from tasks.targets import resolve_customer
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor
from tests.tasks.streams import customer_entries, id_ms, wait_entry

REFUSED = "not claimed, this delivery ends"


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=6, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=4, name="dup-a")
    eng.start_worker("monitors", concurrency=4, name="dup-b")
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


def _node(name: str) -> str:
    return f"{name}@{socket.gethostname()}"


def _consume(names: list[str], on: bool) -> None:
    """Let these workers take monitor messages, or not (running tasks are not touched):
    the plain queue and the router's own (tasks/affinity.py; a keeper says again what its
    worker consumes every ten seconds, longer than a test keeps it off)."""
    destination = [_node(n) for n in names]
    for queue in (keys.MONITOR_QUEUE, keys.router_queue(ROUTER_ID)):
        if on:
            app.control.add_consumer(queue, destination=destination, reply=True, timeout=5)
        else:
            app.control.cancel_consumer(queue, destination=destination, reply=True, timeout=5)


def _worker(eng: Engine, name: str) -> CeleryProcess:
    return next(p for p in eng.processes if p.name == name)


def _send_again(customer_id: str, session_id: str, attempt: int) -> None:
    """The same message again: same token, same fence, as a broker redelivery would."""
    owner = runtime.current().semaphore.owner_of(customer_id)
    assert owner is not None and owner.token == f"{session_id}:{attempt}"
    now = runtime.current().semaphore.now_ms()
    lifecycle.launch(Token(session_id, attempt), owner.fence, resolve_customer(customer_id), enqueued_ms=now)


def _assert_one_producer(eng: Engine, customer_id: str, session_id: str) -> None:
    entries = [e for e in customer_entries(eng.redis, customer_id) if e["session_id"] == session_id]
    started = [e for e in entries if e["type"] == "started"]
    assert len(started) == 1, started
    seqs = [e["seq"] for e in entries]
    assert len(seqs) == len(set(seqs)), f"repeated seq numbers: {seqs}"
    samples = [e for e in entries if e["type"] == "traffic"]
    fences = {e["fence"] for e in samples}
    assert len(fences) == 1, fences
    # One sample a second: over the samples' own time span, never two producers' worth.
    span = (id_ms(samples[-1]["id"]) - id_ms(samples[0]["id"])) / 1000
    assert len(samples) <= span + 2, (len(samples), span)


def test_monitor_duplicate_delivery_while_running_makes_one_producer(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[0])
    info = start_monitor(engine, cid, requested_by="test", timeout=8.0).info
    assert info.task_id is not None
    runner = next(n for n in ("dup-a", "dup-b") if info.task_id in _worker(engine, n).log())
    other = "dup-b" if runner == "dup-a" else "dup-a"
    _consume([runner], on=False)  # the duplicate must reach the other process
    try:
        _send_again(cid, info.session_id, 1)
        wait_for(lambda: REFUSED in _worker(engine, other).log(), 10.0, what="the duplicate to be refused")
        wait_for(
            lambda: len([e for e in customer_entries(engine.redis, cid) if e["type"] == "traffic"]) >= 6,
            10.0,
            what="a few more seconds of samples",
        )
        _assert_one_producer(engine, cid, info.session_id)
    finally:
        _consume([runner], on=True)
        service.stop(cid, requested_by="test")
        wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 5.0, "stopped")


def test_monitor_duplicate_delivery_before_start_makes_one_producer(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[1])
    _consume(["dup-a", "dup-b"], on=False)
    try:
        info = service.start(cid, requested_by="test")
        _send_again(cid, info.session_id, 1)  # both copies wait in the queue
    finally:
        _consume(["dup-a", "dup-b"], on=True)
    try:
        wait_for(
            lambda: REFUSED in _worker(engine, "dup-a").log() + _worker(engine, "dup-b").log(),
            10.0,
            what="one of the two deliveries to be refused",
        )
        deadline = time.monotonic() + 4.0
        wait_for(
            lambda: (
                time.monotonic() > deadline
                and len([e for e in customer_entries(engine.redis, cid) if e["type"] == "traffic"]) >= 3
            ),
            10.0,
            what="a few seconds of samples",
        )
        _assert_one_producer(engine, cid, info.session_id)
    finally:
        service.stop(cid, requested_by="test")
        wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 5.0, "stopped")


def test_monitor_customer_suspended_while_queued_ends_with_a_stopped_event(engine: Engine) -> None:
    from sqlalchemy import update

    from models import Customer
    from tasks import sessions

    username = engine.usernames("pppoe")[2]
    cid = engine.customer_id(username)
    _consume(["dup-a", "dup-b"], on=False)
    try:
        info = service.start(cid, requested_by="test")
        with sessions.db() as s:
            s.execute(update(Customer).where(Customer.id == cid).values(status="suspended"))
    finally:
        _consume(["dup-a", "dup-b"], on=True)
    stopped = wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 10.0, "stopped")
    assert stopped["session_id"] == info.session_id
    assert "suspended" in stopped["reason"] and stopped["username"] == username
    row = sessions.get(info.session_id)
    assert row is not None and (row.desired_state, row.actual_state) == ("stopped", "stopped")
    assert cid not in {h.customer_id for h in runtime.current().semaphore.holders()}
    assert not [e for e in customer_entries(engine.redis, cid) if e["type"] == "traffic"]


def test_monitor_message_older_than_its_expiry_is_dropped_untouched(engine: Engine) -> None:
    cid = engine.customer_id(engine.usernames("pppoe")[3])
    info = start_monitor(engine, cid, requested_by="test", timeout=8.0)
    sem = runtime.current().semaphore
    owner = sem.owner_of(cid)
    assert owner is not None
    stale = sem.now_ms() - 10 * 60 * 1000  # ten minutes in the queue
    lifecycle.launch(Token(info.session_id, 1), owner.fence, resolve_customer(cid), enqueued_ms=stale)
    try:
        wait_for(
            lambda: "message expired in the queue" in engine.logs(), 10.0, what="the stale message dropped"
        )
        still = sem.owner_of(cid)
        assert still is not None and (still.token, still.fence) == (owner.token, owner.fence)
        _assert_one_producer(engine, cid, info.session_id)
    finally:
        service.stop(cid, requested_by="test")
        wait_entry(engine.redis, cid, lambda e: e["type"] == "stopped", 5.0, "stopped")
