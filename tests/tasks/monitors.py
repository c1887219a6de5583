"""The monitors a test starts: started and sampling, their session rows, their lease tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from tests.tasks.streams import matches, wait_entry

if TYPE_CHECKING:
    from models import MonitorSession
    from tasks.service import SessionInfo
    from tests.tasks.engine import Engine


@dataclass(frozen=True)
class Running:
    """A monitor the test started, as service.start answered and its first sample showed."""

    info: SessionInfo
    first: dict[str, Any]  # its first traffic entry

    @property
    def session_id(self) -> str:
        return self.info.session_id

    @property
    def attempt(self) -> int:
        return self.info.attempt

    @property
    def fence(self) -> int:
        """The fence its samples carry: another value means another producer."""
        fence: int = self.first["fence"]
        return fence

    @property
    def token(self) -> str:
        """Its lease's token."""
        return token(self.info.session_id, self.info.attempt)


def start_monitors(
    eng: Engine, customer_ids: Iterable[str], requested_by: str | None = None, timeout: float = 10.0
) -> dict[str, Running]:
    """Start a monitor for every customer, then wait for each one's first sample (each
    wait up to `timeout`); customer id -> its monitor, in the order given."""
    from tasks import service

    infos = {cid: service.start(cid, requested_by=requested_by) for cid in customer_ids}
    return {
        cid: Running(
            info,
            wait_entry(
                eng.redis,
                cid,
                matches(type="traffic", session_id=info.session_id),
                timeout,
                f"the first sample of {cid}",
            ),
        )
        for cid, info in infos.items()
    }


def start_monitor(
    eng: Engine, customer_id: str, requested_by: str | None = None, timeout: float = 10.0
) -> Running:
    """Start one monitor and wait for its first sample."""
    return start_monitors(eng, [customer_id], requested_by, timeout)[customer_id]


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
