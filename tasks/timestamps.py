"""Moments as text: the one place a datetime is written out.

Inside the service a moment stays a datetime (SessionInfo, status()); it becomes text
only at the edge, in the web layer's JSON, the CLI's output and the stream messages,
through these two functions.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime | None) -> str | None:
    """A stored moment as the REST API and the CLI write it: ISO 8601 at the precision
    stored, with its offset ("2026-11-24T10:21:44.123456+00:00"); None stays None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return moment.isoformat()


def rfc3339(moment: datetime | None = None) -> str:
    """A stream message's `timestamp` (now by default): UTC, millisecond precision, 'Z'
    suffix ("2026-11-24T10:21:44.123Z"). The publish script (tasks/publisher.py) writes
    the same format from the Redis clock, in Lua: a change here is a change there."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
