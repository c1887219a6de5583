"""Supervision: dead or stalled links are replaced and every live stream is re-issued."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.polling import wait_for
from routeros import RouterClient, RouterEndpoint, Stream, UnreachableError
from routeros.simulator import Simulator
from tests.routeros.client_support import (
    data_of,
    endpoint_for,
    monitor,
    next_event,
    pppoe_interfaces,
    pppoe_user,
    running_sim,
)
from tests.routeros.raw_router import RawRouter, Send, listen_and_identity, tag_of

# How long every stream may take to flow again. Recovery is a reconnect (first retry at
# once, then backoff capped at 0.5 s) plus re-issuing the streams, well under a second on
# an idle machine; the bound only has to tell "recovers" from "never recovers", so it is
# generous enough for a loaded 2-core CI. Recovery speed is measured by the benchmarks.
RECOVERY_TIMEOUT = 15.0


@pytest.fixture()
def sim() -> Iterator[Simulator]:
    with running_sim(pppoe=30) as s:
        yield s


def supervised(sim: Simulator, **kwargs: Any) -> RouterClient:
    # A short keepalive and a capped backoff keep the stall case inside the budget.
    kwargs.setdefault("keepalive", 0.3)
    kwargs.setdefault("backoff_max", 0.5)
    return RouterClient(endpoint_for(sim, timeout=1.0), **kwargs)


def flowing_streams(client: RouterClient, names: list[str]) -> list[Stream]:
    streams = [monitor(client, name) for name in names]
    for stream in streams:
        next_event(stream, {"data"}, timeout=5)
    return streams


def assert_all_recover(streams: list[Stream], names: list[str], recovered_from: Callable[[], float]) -> None:
    """Each stream says reconnecting, then resumed, then carries its own samples again."""
    for stream in streams:
        event, _ = next_event(stream, {"reconnecting"}, timeout=RECOVERY_TIMEOUT)
        assert event.message
    deadline = recovered_from() + RECOVERY_TIMEOUT
    for stream, name in zip(streams, names):
        _, seen = next_event(stream, {"resumed"}, timeout=max(0.0, deadline - time.monotonic()))
        assert all(e.kind == "data" for e in seen), [e.kind for e in seen]
        event, _ = next_event(stream, {"data"}, timeout=max(0.0, deadline - time.monotonic()))
        assert data_of(event)["name"] == name


def test_supervision_reconnects_after_dropped_connection(sim: Simulator) -> None:
    names = pppoe_interfaces(sim)[:20]
    with supervised(sim) as client:
        streams = flowing_streams(client, names)
        old_tags = {s.tag for s in streams}
        sim.close_connections()
        dropped_at = time.monotonic()
        assert_all_recover(streams, names, lambda: dropped_at)
        assert old_tags.isdisjoint({s.tag for s in streams})  # re-issued under fresh tags
        assert client.stats()["reconnects"] >= 1
        wait_for(lambda: sim.stats()["open_sessions"] == 1, 5, "the router to see one session again")


def test_supervision_reconnects_after_fatal(sim: Simulator) -> None:
    names = pppoe_interfaces(sim)[:20]
    with supervised(sim) as client:
        streams = flowing_streams(client, names)
        sim.send_fatal("session terminated on request")
        sent_at = time.monotonic()
        assert_all_recover(streams, names, lambda: sent_at)
        assert "fatal" in client.stats()["last_error"]


def test_supervision_detects_stall_and_recovers_when_router_answers_again(sim: Simulator) -> None:
    names = pppoe_interfaces(sim)[:20]
    with supervised(sim) as client:
        streams = flowing_streams(client, names)
        sim.stall(True)
        resumed_at: list[float] = []

        def unstall_after_detection() -> float:
            sim.stall(False)
            resumed_at.append(time.monotonic())
            return resumed_at[0]

        assert_all_recover(streams, names, unstall_after_detection)
        assert "stalled" in client.stats()["last_error"] or client.stats()["reconnects"] >= 1


def test_supervision_pending_call_fails_with_unreachable_when_link_drops(sim: Simulator) -> None:
    with supervised(sim, keepalive=30) as client:
        # The reply is held back far longer than the test: only the dropped link can end the call.
        sim.set_latency(60.0)
        call_timeout = 60.0
        outcome: list[BaseException | object] = []

        def slow_call() -> None:
            try:
                outcome.append(client.call("/system/identity/print", timeout=call_timeout))
            except BaseException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=slow_call)
        caller.start()
        wait_for(lambda: client.stats()["open_routes"] > 0, 5, "the call to be on the wire")
        sim.close_connections()
        caller.join(timeout=call_timeout / 2)  # ended by the drop, not by its own timeout
        assert not caller.is_alive()
        assert isinstance(outcome[0], UnreachableError), outcome
        sim.set_latency(0.0)
        # and the client is usable again once it has reconnected
        assert client.call("/system/identity/print", timeout=5)


def test_supervision_pppoe_session_drop_ends_stream_then_resubscribe_works(sim: Simulator) -> None:
    name = pppoe_interfaces(sim)[5]
    user = pppoe_user(sim, name)
    with supervised(sim, keepalive=10) as client:
        stream = flowing_streams(client, [name])[0]
        sim.drop_pppoe(user, mode="trap")
        event, _ = next_event(stream, {"trap", "done", "failed"}, timeout=5)
        assert event.kind == "trap" and "no such item" in (event.message or "")
        assert stream.closed
        sim.restore_pppoe(user)
        again = flowing_streams(client, [name])[0]
        assert again.tag != stream.tag
        assert client.stats()["reconnects"] == 0  # a trap is the command's end, not the link's


def test_supervision_pppoe_session_drop_with_bare_done_ends_stream(sim: Simulator) -> None:
    name = pppoe_interfaces(sim)[6]
    user = pppoe_user(sim, name)
    with supervised(sim) as client:
        stream = flowing_streams(client, [name])[0]
        sim.drop_pppoe(user, mode="done")
        event, _ = next_event(stream, {"trap", "done", "failed"}, timeout=5)
        assert event.kind == "done"
        sim.restore_pppoe(user)
        flowing_streams(client, [name])


def test_supervision_close_fails_live_streams(sim: Simulator) -> None:
    client = supervised(sim)
    client.connect()
    stream = flowing_streams(client, pppoe_interfaces(sim)[:1])[0]
    client.close()
    event, _ = next_event(stream, {"failed", "done", "trap", "reconnecting"}, timeout=5)
    assert event.kind == "failed" and event.message == "client closed"
    with pytest.raises(UnreachableError):
        client.call("/system/identity/print")


def test_supervision_refused_relogin_fails_streams_with_router_text() -> None:
    def handler(words: list[str], send: Send) -> None:
        if words[0] == "/listen":
            send(["!re", "=n=1", f".tag={tag_of(words)}"])

    with RawRouter(handler) as router:
        client = RouterClient(RouterEndpoint("127.0.0.1", router.port, timeout=1.0), keepalive=5)
        client.connect()
        stream = client.stream("/listen")
        next_event(stream, {"data"}, timeout=5)
        router.refuse_logins = True
        router.drop_connections()
        next_event(stream, {"reconnecting"}, timeout=5)
        event, _ = next_event(stream, {"failed", "resumed"}, timeout=5)
        assert event.kind == "failed" and "invalid user name or password" in (event.message or "")
        client.close()


def test_supervision_stream_opened_while_down_is_issued_after_reconnect(sim: Simulator) -> None:
    names = pppoe_interfaces(sim)
    with supervised(sim) as client:
        sim.stall(True)
        sim.close_connections()
        wait_for(lambda: not client.connected, 5, "the client to notice the closed connection")
        late = monitor(client, names[7])
        next_event(late, {"reconnecting"}, timeout=5)
        sim.stall(False)
        next_event(late, {"resumed"}, timeout=RECOVERY_TIMEOUT)
        event, _ = next_event(late, {"data"}, timeout=RECOVERY_TIMEOUT)
        assert data_of(event)["name"] == names[7]


def test_supervision_garbage_from_router_costs_a_reconnect_not_a_crash() -> None:
    with RawRouter(listen_and_identity) as router:
        with RouterClient(RouterEndpoint("127.0.0.1", router.port, timeout=1.0), keepalive=5) as client:
            stream = client.stream("/listen")
            next_event(stream, {"data"}, timeout=5)
            router.inject(b"\xf8garbage")  # a reserved control byte: the stream cannot be parsed on
            event, _ = next_event(stream, {"reconnecting"}, timeout=5)
            assert "protocol error" in (event.message or "")
            next_event(stream, {"resumed"}, timeout=5)
            next_event(stream, {"data"}, timeout=5)
            assert client.call("/system/identity/print") == [{"name": "raw"}]
