"""Shared helpers for the RouterClient tests: simulator start-up and deadline polling."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from routeros import RouterClient, RouterEndpoint, Stream, StreamEvent
from routeros.simulator import Simulator, SimulatorConfig

MONITOR = "/interface/monitor-traffic"
PROPLIST = ["name", "rx-bits-per-second", "tx-bits-per-second"]


def start_sim(**overrides: Any) -> Simulator:
    config: dict[str, Any] = dict(pppoe=10, hotspot=1, static=1, seed=1, user="admin", password="admin")
    config.update(overrides)
    sim = Simulator(SimulatorConfig(**config))
    sim.start()
    return sim


@contextmanager
def running_sim(**overrides: Any) -> Iterator[Simulator]:
    sim = start_sim(**overrides)
    try:
        yield sim
    finally:
        sim.stop()


def endpoint_for(sim: Simulator, **overrides: Any) -> RouterEndpoint:
    # The production default timeout: a loopback call needs far less, but a loaded CI must
    # not turn slowness into "unreachable". Tests about timing pass their own.
    fields: dict[str, Any] = dict(
        host=sim.host, port=sim.port, username="admin", password="admin", timeout=10.0
    )
    fields.update(overrides)
    return RouterEndpoint(**fields)


def pppoe_interfaces(sim: Simulator) -> list[str]:
    return [c["target"] for c in sim.customers()["customers"] if c["service_type"] == "pppoe"]


def pppoe_user(sim: Simulator, interface: str) -> str:
    return next(c["pppoe_username"] for c in sim.customers()["customers"] if c["target"] == interface)


def monitor(client: RouterClient, interface: str, interval: str = "1", maxsize: int = 64) -> Stream:
    return client.stream(
        MONITOR, {"interface": interface, "interval": interval}, proplist=PROPLIST, maxsize=maxsize
    )


def data_of(event: StreamEvent | None) -> dict[str, str]:
    """The sample a data event carries (failing the test for anything else)."""
    assert event is not None and event.kind == "data" and event.data is not None, event
    return event.data


def next_event(stream: Stream, kinds: Iterable[str], timeout: float) -> tuple[StreamEvent, list[StreamEvent]]:
    """Read events until one of ``kinds``; returns it and everything seen before it."""
    wanted = set(kinds)
    seen: list[StreamEvent] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        event = stream.get(timeout=max(0.0, remaining))
        if event is None:
            raise AssertionError(f"no {sorted(wanted)} event within {timeout}s; saw {[e.kind for e in seen]}")
        if event.kind in wanted:
            return event, seen
        seen.append(event)
