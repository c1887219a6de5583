"""The monitors a test started, seen from outside: their session rows and lease tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from models import MonitorSession


def live_tokens(client: redis.Redis | None = None) -> set[str]:
    """The tokens of every live lease, in `client`'s Redis (default: this process's)."""
    from tasks import runtime
    from tasks.semaphore import Semaphore

    semaphore = runtime.current().semaphore if client is None else Semaphore(client)
    return {h.token for h in semaphore.holders()}


def token(session_id: str, attempt: int) -> str:
    from tasks.lifecycle import Token

    return str(Token(session_id, attempt))


def session_row(session_id: object) -> MonitorSession:
    """The monitor_sessions row of a session the test started (it must exist)."""
    from tasks import sessions

    row = sessions.get(session_id)
    assert row is not None, f"no monitor_sessions row for {session_id}"
    return row


def open_session_row(customer_id: str) -> MonitorSession:
    """The customer's open session row (desired running), which the test expects."""
    from tasks import sessions

    row = sessions.open_for_customer(customer_id)
    assert row is not None, f"no open session for customer {customer_id}"
    return row
