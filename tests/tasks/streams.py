"""XRANGE/XREVRANGE replies, narrowed to what the tests read.

redis-py types a range reply loosely (`list[tuple[bytes | str | None, dict | None]] |
None`: the same types serve RESP3 and the deleted entries XCLAIM can answer). The
tests' clients are plain ones (no decode_responses) reading ordinary ranges, so every
entry is a bytes id with a dict of bytes fields; these helpers check that and say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
