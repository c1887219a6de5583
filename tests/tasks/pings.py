"""What the ping tests read: a session's latency entries and `started` event, and the
pings the simulator is running."""

from __future__ import annotations

from typing import Any

import redis

from harness.polling import wait_for
from tests.tasks.engine import Engine
from tests.tasks.streams import customer_entries, wait_entry


def latency_entries(client: redis.Redis, customer_id: str, session_id: str) -> list[dict[str, Any]]:
    """The session's latency entries, in stream order."""
    return [
        e
        for e in customer_entries(client, customer_id)
        if e["type"] == "latency" and e["session_id"] == session_id
    ]


def wait_latency(
    client: redis.Redis, customer_id: str, session_id: str, count: int, timeout: float, **fields: object
) -> list[dict[str, Any]]:
    """Once the session has `count` latency entries with these field values: all of them."""

    def found() -> list[dict[str, Any]] | None:
        matching = [
            e
            for e in latency_entries(client, customer_id, session_id)
            if all(e[name] == value for name, value in fields.items())
        ]
        return matching if len(matching) >= count else None

    return wait_for(found, timeout, what=f"{count} latency entries {fields or ''} of {customer_id}")


def started_event(client: redis.Redis, customer_id: str, session_id: str) -> dict[str, Any]:
    return wait_entry(
        client,
        customer_id,
        lambda e: e["type"] == "started" and e["session_id"] == session_id,
        10.0,
        f"the started event of {customer_id}",
    )


def pings_running(eng: Engine) -> int:
    """`/ping` commands running on the simulated router now."""
    return int(eng.sim.stats()["ping_streams"])


def pings_issued(eng: Engine) -> int:
    """`/ping` commands the router received since its counts were last reset."""
    return int(eng.sim.command_counts().get("/ping", 0))
