"""Tag routing on one connection: many streams, cancel, calls alongside, back-pressure, strays."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from harness.polling import wait_for
from routeros import RouterClient, RouterEndpoint, TrapError
from routeros.multiplexer import Stream, StreamEvent
from routeros.simulator import Simulator
from tests.routeros.client_support import (
    MONITOR,
    data_of,
    endpoint_for,
    monitor,
    next_event,
    pppoe_interfaces,
    running_sim,
)
from tests.routeros.raw_router import RawRouter, Send, tag_of


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with running_sim(pppoe=200) as s:
        yield s


@pytest.fixture()
def client(sim: Simulator) -> Iterator[RouterClient]:
    with RouterClient(endpoint_for(sim)) as c:
        yield c


def test_multiplexer_200_streams_on_one_connection_get_their_own_samples(
    sim: Simulator, client: RouterClient
) -> None:
    names = pppoe_interfaces(sim)[:200]
    # Sessions of earlier tests' clients may still be closing: wait until ours is the only one.
    wait_for(lambda: sim.stats()["open_sessions"] == 1, 5, "this test's client to be the only session")
    started = time.monotonic()
    streams = {name: monitor(client, name) for name in names}
    samples: dict[str, list[dict[str, str]]] = {name: [] for name in names}

    def drained_enough() -> bool:
        for name, stream in streams.items():
            while (event := stream.get(timeout=0)) is not None:
                samples[name].append(data_of(event))
        return all(len(rows) >= 3 for rows in samples.values())

    wait_for(drained_enough, timeout=15, what="3 samples on each of 200 streams", step=0.1)
    # 1 Hz: three samples (immediate, +1 s, +2 s) cannot all be there sooner than 2 s. A lower
    # bound only: load can make the wait longer, never shorter.
    assert time.monotonic() - started >= 1.9
    for name, rows in samples.items():
        assert {row["name"] for row in rows} == {name}, f"misrouted sample on {name}"
        sections = [int(row[".section"]) for row in rows]
        assert sections == list(range(sections[0], sections[0] + len(sections))), "lost samples"
    assert sim.stats()["open_sessions"] == 1  # all on the one connection
    assert client.stats()["unknown_tag_sentences"] == 0
    assert client.stats()["dropped"] == 0
    for stream in streams.values():
        stream.cancel()
    for stream in streams.values():
        next_event(stream, {"done"}, timeout=5)


def test_multiplexer_cancel_ends_stream_with_done_and_keeps_tag_routable(
    sim: Simulator, client: RouterClient
) -> None:
    stream = monitor(client, pppoe_interfaces(sim)[1])
    next_event(stream, {"data"}, timeout=5)
    wait_for(lambda: sim.stats()["running_commands"] >= 1, 5, "the stream to run on the router")
    stream.cancel()
    stream.cancel()  # idempotent
    event, _ = next_event(stream, {"done", "trap", "failed"}, timeout=5)
    assert event.kind == "done"  # the category-2 "interrupted" trap is a normal end after cancel
    assert stream.closed
    assert stream.get(timeout=0) is None
    # the trap and the !done that trail /cancel were routed to the tag, not counted as strays
    assert client.stats()["unknown_tag_sentences"] == 0
    wait_for(lambda: client.stats()["open_routes"] == 0, 5, "cancelled tag released at its !done")
    wait_for(lambda: sim.stats()["running_commands"] == 0, 5, "the cancelled command to end on the router")
    assert client.call("/system/identity/print")  # connection still usable


def test_multiplexer_calls_from_many_threads_while_streams_run(sim: Simulator, client: RouterClient) -> None:
    names = pppoe_interfaces(sim)
    streams = [monitor(client, name) for name in names[:20]]
    errors: list[BaseException] = []
    results: list[int] = []

    def worker(offset: int) -> None:
        try:
            for i in range(10):
                name = names[(offset * 10 + i) % len(names)]
                rows = client.call("/interface/print", queries=[f"?name={name}"], proplist=["name", "type"])
                assert rows == [{"name": name, "type": "pppoe-in"}], rows
                results.append(1)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(results) == 160
    for stream, name in zip(streams, names):
        event, _ = next_event(stream, {"data"}, timeout=5)
        assert data_of(event)["name"] == name
        stream.cancel()


def test_multiplexer_call_values_stay_raw_strings(client: RouterClient) -> None:
    resource = client.call("/system/resource/print")[0]
    assert all(isinstance(v, str) for v in resource.values())
    assert client.call("/interface/print", queries=["?name=ether1"], proplist=["running"]) in (
        [{"running": "true"}],
        [],
    )


def test_multiplexer_call_trap_raises_trap_error_with_all_traps(client: RouterClient) -> None:
    with pytest.raises(TrapError) as info:
        client.call("/no/such/thing")
    assert "no such command" in info.value.message
    assert len(info.value.traps) >= 1
    assert client.call("/system/identity/print")


def test_multiplexer_empty_print_returns_no_rows(client: RouterClient) -> None:
    assert client.call("/interface/print", queries=["?name=<pppoe-nobody-at-all>"]) == []
    assert client.stats()["unknown_tag_sentences"] == 0  # the !empty was not a stray


def test_multiplexer_stream_on_unknown_interface_ends_with_trap(client: RouterClient) -> None:
    stream = monitor(client, "<pppoe-does-not-exist>")
    event, seen = next_event(stream, {"trap", "done", "failed"}, timeout=5)
    assert event.kind == "trap" and not seen
    assert "input does not match" in (event.message or "")
    assert stream.closed


def test_multiplexer_slow_consumer_drops_oldest_and_never_stalls_others(
    sim: Simulator, client: RouterClient
) -> None:
    names = pppoe_interfaces(sim)
    slow = monitor(client, names[2], interval="0.05", maxsize=3)
    fast = monitor(client, names[3], interval="0.05")
    fast_seen = 0

    def fast_keeps_flowing_while_slow_overflows() -> bool:
        nonlocal fast_seen
        while (event := fast.get(timeout=0)) is not None:
            fast_seen += event.kind == "data"
        return slow.dropped >= 20 and fast_seen >= 20

    wait_for(fast_keeps_flowing_while_slow_overflows, 10, "slow stream to overflow while fast flows")
    assert fast.dropped == 0
    assert slow.pending() == 3
    sections = [int(data_of(slow.get(timeout=0))[".section"]) for _ in range(3)]
    assert sections == sorted(sections)
    # the oldest were dropped: what is left is recent
    assert sections[0] >= slow.dropped
    assert client.stats()["dropped"] >= slow.dropped
    slow.cancel()
    fast.cancel()


def test_multiplexer_unknown_tag_and_untagged_sentences_are_counted_not_fatal() -> None:
    def handler(words: list[str], send: Send) -> None:
        tag = tag_of(words)
        send(["!re", "=name=stray", ".tag=never-issued"])
        send(["!re", "=name=untagged"])
        send(["!re", "=name=ok", f".tag={tag}"])
        send(["!done", f".tag={tag}"])

    with RawRouter(handler) as router:
        with RouterClient(RouterEndpoint("127.0.0.1", router.port, timeout=10)) as client:
            assert client.call("/system/identity/print") == [{"name": "ok"}]
            assert client.call("/system/identity/print") == [{"name": "ok"}]
            stats = client.stats()
    assert stats["unknown_tag_sentences"] == 4
    assert stats["reconnects"] == 0


def test_multiplexer_tag_position_anywhere_and_trailing_cancel_replies() -> None:
    # .tag first, then a cancelled stream's trap / !empty / !done arriving after the cancel's own !done
    def handler(words: list[str], send: Send) -> None:
        tag = tag_of(words)
        if words[0] == "/listen":
            send(["!re", f".tag={tag}", "=n=1"])
        elif words[0] == "/cancel":
            target = next(w[5:] for w in words if w.startswith("=tag="))
            send(["!trap", f".tag={target}", "=category=2", "=message=interrupted"])
            send(["!done", f".tag={tag}"])
            send(["!empty", f".tag={target}"])
            send(["!done", f".tag={target}"])

    with RawRouter(handler) as router:
        with RouterClient(RouterEndpoint("127.0.0.1", router.port, timeout=10)) as client:
            stream = client.stream("/listen")
            event, _ = next_event(stream, {"data"}, timeout=5)
            assert event.data == {"n": "1"}
            stream.cancel()
            event, seen = next_event(stream, {"done", "trap", "failed"}, timeout=5)
            assert event.kind == "done" and not seen
            assert client.stats()["unknown_tag_sentences"] == 0
            assert client.stats()["open_routes"] == 0


def test_multiplexer_stream_command_is_written_with_its_own_tag(sim: Simulator, client: RouterClient) -> None:
    stream = client.stream(MONITOR, {"interface": pppoe_interfaces(sim)[4], "interval": "1"})
    assert stream.tag.startswith("s")
    other = client.stream(MONITOR, {"interface": pppoe_interfaces(sim)[4], "interval": "1"})
    assert other.tag != stream.tag
    next_event(stream, {"data"}, timeout=5)
    next_event(other, {"data"}, timeout=5)
    stream.cancel()
    other.cancel()


def _quiet_stream() -> Stream:
    """A monitor-traffic stream of 4 events whose callbacks do nothing."""
    return Stream(
        ["/interface/monitor-traffic"],
        maxsize=4,
        on_cancel=lambda s: None,
        on_drop=lambda: None,
        on_closed=lambda s: None,
    )


def test_multiplexer_stream_wake_returns_a_blocked_get_at_once_and_keeps_events() -> None:
    stream = _quiet_stream()
    got: list[StreamEvent | None] = []
    blocked_for = 30.0
    reader = threading.Thread(target=lambda: got.append(stream.get(timeout=blocked_for)))
    started = time.monotonic()
    reader.start()
    # CPython's Condition keeps its blocked waiters in _waiters: proof the get() is waiting.
    wait_for(lambda: stream._cond._waiters, 5, "get() to block")  # type: ignore[attr-defined]  # CPython detail
    stream.wake()
    reader.join(blocked_for)
    assert not reader.is_alive() and got == [None]
    # "At once" means woken, not timed out: well inside the timeout however loaded the machine.
    assert time.monotonic() - started < blocked_for / 2
    # A wake before get() is not lost; it is used up once; queued events still come first.
    stream.wake()
    started = time.monotonic()
    assert stream.get(timeout=blocked_for) is None
    assert time.monotonic() - started < blocked_for / 2  # the early wake, not the timeout
    stream.push(StreamEvent("data", {"rx": "1"}))
    stream.wake()
    event = stream.get(timeout=0)
    assert event is not None and event.kind == "data"
    started = time.monotonic()
    # The wake was used up: this get() waits out its timeout (a lower bound: load only adds).
    assert stream.get(timeout=0.2) is None and time.monotonic() - started >= 0.2


def test_multiplexer_stream_on_data_takes_samples_only_while_the_consumer_is_parked() -> None:
    stream = _quiet_stream()
    taken: list[tuple[str, str]] = []
    refuse = {"3"}

    def on_data(data: dict[str, str]) -> bool:
        taken.append((data["rx"], threading.current_thread().name))
        return data["rx"] not in refuse

    stream.on_data = on_data
    # Nobody waits in get(): queued as usual, the hook not asked.
    stream.push(StreamEvent("data", {"rx": "1"}))
    assert taken == []
    event = stream.get(timeout=0)
    assert event is not None and event.data == {"rx": "1"}

    got: list[StreamEvent | None] = []
    consumer = threading.Thread(target=lambda: got.append(stream.get(timeout=30.0)))
    consumer.start()
    wait_for(lambda: stream._cond._waiters, 5, "get() to block")  # type: ignore[attr-defined]  # CPython detail
    # Parked with nothing queued: taken by the hook on the pushing thread; the consumer sleeps on.
    assert stream.push(StreamEvent("data", {"rx": "2"}))
    assert taken == [("2", threading.current_thread().name)] and consumer.is_alive()
    # Refused: queued, and the consumer wakes with it.
    stream.push(StreamEvent("data", {"rx": "3"}))
    consumer.join(10)
    assert not consumer.is_alive()
    assert [e.data for e in got if e is not None] == [{"rx": "3"}]
    assert [rx for rx, _ in taken] == ["2", "3"]
