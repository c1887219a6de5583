"""XRANGE/XREVRANGE replies, narrowed to what the tests read.

redis-py types a range reply loosely (`list[tuple[bytes | str | None, dict | None]] |
None`: the same types serve RESP3 and the deleted entries XCLAIM can answer). The
tests' clients are plain ones (no decode_responses) reading ordinary ranges, so every
entry is a bytes id with a dict of bytes fields; these helpers check that and say so.
On top of them: a customer's stream decoded, waiting for an entry in it, and the
milliseconds of stream ids (web.relay.parse_id) and of the Redis clock that takes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import redis

from harness.polling import wait_for

StreamEntry = tuple[bytes, dict[bytes, bytes]]


def stream_entries(reply: Iterable[tuple[object, object]] | None) -> list[StreamEntry]:
    """The entries of a range reply, as (id, fields), in stream order."""
    assert reply is not None, "a range reply is a list, empty for a missing stream"
    out: list[StreamEntry] = []
    for entry_id, fields in reply:
        assert isinstance(entry_id, bytes) and isinstance(fields, dict), (entry_id, fields)
        out.append((entry_id, fields))
    return out


def decoded(reply: Iterable[tuple[object, object]] | None) -> list[dict[str, Any]]:
    """The messages of a range reply (tasks.message.decode_entry of each), in stream order."""
    from tasks.message import decode_entry

    return [decode_entry(entry_id, fields) for entry_id, fields in stream_entries(reply)]


def id_ms(stream_id: str) -> int:
    """The milliseconds of a stream id: when Redis, on its own clock, took the entry."""
    from web.relay import parse_id

    return parse_id(stream_id)[0]


def redis_ms(client: redis.Redis) -> int:
    """Redis's clock now, in milliseconds: the clock stream ids are taken on."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def customer_entries(client: redis.Redis, customer_id: str) -> list[dict[str, Any]]:
    """Every message of the customer's stream, decoded, in stream order."""
    from tasks.keys import customer_stream

    return decoded(client.xrange(customer_stream(customer_id)))


Predicate = Callable[[dict[str, Any]], bool]


def matches(**fields: object) -> Predicate:
    """A predicate on decoded entries: every given field has the given value.

    Binds its values when called, so it can be built in a loop (what a lambda's
    `s=session_id` default did, which mypy cannot type)."""
    return lambda entry: all(entry[name] == value for name, value in fields.items())


def session_samples(client: redis.Redis, customer_id: str, session_id: str) -> list[dict[str, Any]]:
    """The session's samples (traffic entries, every attempt's) in its customer's stream."""
    return [
        e
        for e in customer_entries(client, customer_id)
        if e["type"] == "traffic" and e["session_id"] == session_id
    ]


def sample_after(session_id: str, seq: int) -> Predicate:
    """A sample of the session written after its entry numbered `seq`."""
    return lambda e: bool(e["type"] == "traffic" and e["session_id"] == session_id and e["seq"] > seq)


def wait_entry(
    client: redis.Redis, customer_id: str, predicate: Predicate, timeout: float, message: str
) -> dict[str, Any]:
    """The first entry of the customer's stream that `predicate` accepts, once there is one."""

    def find() -> dict[str, Any] | None:
        for entry in customer_entries(client, customer_id):
            if predicate(entry):
                return entry
        return None

    return wait_for(find, timeout, what=message)
