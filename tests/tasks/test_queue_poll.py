"""The shared queue poll against the simulator: one print per cycle for every subscriber,
each subscriber its own rows, failures shared and backed off, the connection given back
when the last subscriber leaves. The monitors built on it: test_monitor_queue_poll.py."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest

from harness.polling import wait_for
from routeros import LoginError, RouterEndpoint, RouterError, TrapError
from routeros.simulator import Simulator, SimulatorConfig
from tasks.hub import RouterHandle, RouterHub
from tasks.queue_poll import COMMAND, Cycle, Subscription, parse_query, poll_of, subscribe
from tasks.sources import QUEUE_PROPLIST

INTERVAL = 1.0
DENIED = re.escape("not enough permissions (9)")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(
        SimulatorConfig(pppoe=2, hotspot=6, static=6, max_sessions=20, seed=5, password="admin")
    ) as s:
        yield s


@pytest.fixture
def hub() -> Iterator[RouterHub]:
    hub = RouterHub(1)
    yield hub
    hub.close()


def _handle(hub: RouterHub, sim: Simulator) -> RouterHandle:
    handle = hub.checkout(RouterEndpoint("127.0.0.1", sim.port, "admin", "admin", timeout=2, name="sim"))
    assert handle.client(wait=5) is not None, "not logged in after 5 s"
    return handle


def _queries(sim: Simulator) -> dict[str, str]:
    """Query word -> the name of the queue it must find: hotspot queues by name, static
    customers' queues by target address."""
    out = {}
    for c in sim.customers()["customers"]:
        if c["service_type"] == "hotspot":
            out[f"?name={c['target']}"] = c["target"]
        elif c["service_type"] == "static_ip":
            out[f"?target={c['static_ip']}/32"] = c["target"]
    return out


def _join(handle: RouterHandle, query: str) -> Subscription:
    return subscribe(handle, query, interval=INTERVAL, proplist=QUEUE_PROPLIST)


def _next_cycle(subscription: Subscription, timeout: float = 5.0) -> Cycle:
    cycle = subscription.get(timeout)
    assert cycle is not None, f"no cycle within {timeout:g}s"
    return cycle


def _outcome(subscription: Subscription) -> list[dict[str, str]] | RouterError | None:
    """The next cycle's rows for `subscription`, or the error it carries."""
    try:
        return subscription.rows(_next_cycle(subscription, timeout=40.0))
    except RouterError as exc:
        return exc


def _poll_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "queue-poll-sim"]


def _prints(sim: Simulator) -> int:
    return sim.command_counts().get(COMMAND, 0)


def test_queue_poll_parses_only_name_value_words() -> None:
    assert parse_query("?name=<hotspot-a=b>") == ("name", "<hotspot-a=b>")
    assert parse_query("?target=10.0.0.5/32") == ("target", "10.0.0.5/32")
    for word in ("name=x", "?name", "?#|", "?-name", "?<rate=5", "?=name=x"):
        with pytest.raises(ValueError):
            parse_query(word)


def test_queue_poll_cycle_answers_as_the_query_would_in_the_routers_order() -> None:
    rows = [
        {"name": "a", "target": "10.0.0.1/32"},
        {"name": "b", "target": "10.0.0.2/32"},
        {"name": "c", "target": "10.0.0.1/32"},
    ]
    # Indexed for `name` only: a `target` subscriber joined while the print ran.
    cycle = Cycle(rows, None, fields={"name"})
    assert cycle.rows("name", "b") == [rows[1]] and cycle.rows("name", "z") == []
    assert cycle.rows("target", "10.0.0.1/32") == [rows[0], rows[2]]
    assert cycle.rows("target", "10.0.0.1") == []  # the whole value, as the query compares it
    assert not cycle.failed
    not_up = Cycle(None, None, fields={"name"})
    assert not_up.failed and not_up.rows("name", "a") is None


def test_queue_poll_one_print_per_cycle_feeds_every_subscriber_its_own_queue(
    sim: Simulator, hub: RouterHub
) -> None:
    queries = _queries(sim)
    handles = [_handle(hub, sim) for _ in queries]
    subscriptions = {q: _join(h, q) for q, h in zip(queries, handles)}
    missing = _join(handles[0], "?name=<hotspot-nobody>")
    try:
        for subscription in [*subscriptions.values(), missing]:
            _next_cycle(subscription)  # the first cycle, whenever each joined
        before, cycles = _prints(sim), 3
        for _ in range(cycles):
            for query, subscription in subscriptions.items():
                rows = subscription.rows(_next_cycle(subscription))
                assert rows is not None and [r["name"] for r in rows] == [queries[query]], (query, rows)
                assert set(rows[0]) <= set(QUEUE_PROPLIST) and "rate" in rows[0]
            assert missing.rows(_next_cycle(missing)) == []
        # 13 subscribers, one print a cycle (the last one may be under way).
        assert _prints(sim) - before <= cycles + 1
    finally:
        for subscription in [*subscriptions.values(), missing]:
            subscription.close()
        for handle in handles:
            handle.close()


def test_queue_poll_late_subscriber_gets_the_next_cycle_within_an_interval(
    sim: Simulator, hub: RouterHub
) -> None:
    handle = _handle(hub, sim)
    queries = list(_queries(sim))
    first = _join(handle, queries[0])
    try:
        _next_cycle(first)
        _next_cycle(first)  # steady: printing once an interval
        time.sleep(INTERVAL / 2)  # half-way through a cycle, on purpose
        joined = time.monotonic()
        late = _join(handle, queries[1])
        cycle = _next_cycle(late, timeout=INTERVAL + 0.5)
        assert cycle.received - joined <= INTERVAL + 0.5
        assert late.rows(cycle)
        late.close()
    finally:
        first.close()
        handle.close()


def test_queue_poll_failure_reaches_every_subscriber_and_backs_off(sim: Simulator, hub: RouterHub) -> None:
    handle = _handle(hub, sim)
    queries = list(_queries(sim))
    subscriptions = [_join(handle, q) for q in queries[:4]]
    try:
        for subscription in subscriptions:
            _next_cycle(subscription)
        denied0 = sim.stats()["denied_commands"]
        sim.deny_commands(COMMAND)
        failures: list[float] = []
        while len(failures) < 3:
            cycles = [_next_cycle(s, timeout=10.0) for s in subscriptions]
            assert len({id(c) for c in cycles}) == 1, "one print per cycle for all"
            if cycles[0].failed:
                failures.append(cycles[0].received)
                for subscription, cycle in zip(subscriptions, cycles):
                    with pytest.raises(TrapError, match=DENIED):
                        subscription.rows(cycle)
        assert sim.stats()["denied_commands"] - denied0 == len(failures)
        # Someone joining before the next attempt learns the failure now, without a print.
        newcomer = _join(handle, queries[5])
        with pytest.raises(TrapError, match=DENIED):
            newcomer.rows(_next_cycle(newcomer, timeout=0.1))
        newcomer.close()
        sim.deny_commands()  # allowed again: the next attempt brings rows
        cycle = _next_cycle(subscriptions[0], timeout=10.0)
        assert not cycle.failed and subscriptions[0].rows(cycle)
        assert sim.stats()["denied_commands"] - denied0 == len(failures)
        # The hub's ladder: after the third failure in a row the poll waited [2, 4] s, not
        # the interval ([0.5, 1] s after the first, [1, 2] s after the second).
        assert cycle.received - failures[-1] >= 2 * INTERVAL, (failures, cycle.received)
    finally:
        sim.deny_commands()
        for subscription in subscriptions:
            subscription.close()
        handle.close()


def test_queue_poll_refused_relogin_replaces_the_client_then_rows_again(
    sim: Simulator, hub: RouterHub
) -> None:
    handle = _handle(hub, sim)
    subscription = _join(handle, next(iter(_queries(sim))))
    try:
        _next_cycle(subscription)
        sim.refuse_logins(True)
        sim.close_connections()  # the client re-dials, its login is refused: it gives up
        wait_for(lambda: isinstance(_outcome(subscription), LoginError), 20.0, what="the refused login, told")
        sim.refuse_logins(False)
        # The poll dropped the client that gave up: a later print logs in again (on the
        # hub's backoff) and brings rows.
        wait_for(lambda: isinstance(_outcome(subscription), list), 45.0, what="rows on a new login")
    finally:
        sim.refuse_logins(False)
        subscription.close()
        handle.close()


def test_queue_poll_last_subscriber_leaving_ends_the_poll_and_the_connection(
    sim: Simulator, hub: RouterHub
) -> None:
    handle = _handle(hub, sim)
    queries = list(_queries(sim))
    subscriptions = [_join(handle, q) for q in queries[:3]]
    for subscription in subscriptions:
        _next_cycle(subscription)
    poll = poll_of(handle, interval=INTERVAL, proplist=QUEUE_PROPLIST)
    assert poll is not None and poll.subscribers() == 3
    for subscription in subscriptions:
        subscription.close()
    handle.close()
    # No poll thread left behind, and nothing holds the router's session any more.
    wait_for(
        lambda: not any(t.name == "queue-poll-sim" for t in threading.enumerate()),
        5.0,
        what="poll thread ended",
    )
    wait_for(lambda: sim.stats()["open_sessions"] == 0, 5.0, what="the connection closed")
    assert hub.stats()["sim"] == {"connections": 0, "users": 0}
    prints = _prints(sim)
    # Coming back: the poll starts again (at once: its last print is over an interval old).
    handle = _handle(hub, sim)
    again = _join(handle, queries[0])
    try:
        assert again.rows(_next_cycle(again, timeout=INTERVAL + 2.0))
        assert _prints(sim) > prints
    finally:
        again.close()
        handle.close()


def test_queue_poll_wake_returns_a_blocked_get_at_once(sim: Simulator, hub: RouterHub) -> None:
    handle = _handle(hub, sim)
    subscription = _join(handle, next(iter(_queries(sim))))
    try:
        _next_cycle(subscription)
        threading.Timer(0.1, subscription.wake).start()
        began = time.monotonic()
        assert subscription.get(30.0) is None
        assert time.monotonic() - began < 5.0
    finally:
        subscription.close()
        handle.close()
