"""The monitors a test starts and watches: started and sampling, resumed, their next
attempt, all stopped; their session rows, lease tokens and the peak of slots in use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from harness.polling import wait_for
from models import MonitorSession
from tasks import runtime, service, sessions
from tasks.lifecycle import Token
from tasks.semaphore import Semaphore
from tasks.service import SessionInfo
from tests.tasks.engine import Engine
from tests.tasks.streams import matches, sample_after, wait_entry
from tests.tasks.threads import Sampler


@dataclass(frozen=True)
class Running:
    """A monitor the test started, as service.start answered and its first sample showed."""

    customer_id: str
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
    infos = {cid: service.start(cid, requested_by=requested_by) for cid in customer_ids}
    return {
        cid: Running(
            cid,
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


def wait_resumed(eng: Engine, customer_id: str, session_id: str, timeout: float) -> dict[str, Any]:
    """The session's `resumed` entry once it is there (within `timeout`), and a sample
    after it: the monitor is back to sampling. Answers the `resumed` entry."""
    resumed = wait_entry(
        eng.redis,
        customer_id,
        matches(type="resumed", session_id=session_id),
        timeout,
        f"{customer_id} resumed",
    )
    wait_entry(
        eng.redis,
        customer_id,
        sample_after(session_id, resumed["seq"]),
        10.0,
        f"samples of {customer_id} after it",
    )
    return resumed


def wait_next_attempt(eng: Engine, monitor: Running, timeout: float) -> dict[str, Any]:
    """The first sample of the monitor's session written by another producer than the
    one that wrote its first sample: its next attempt (a restart or a hand-over)."""
    return wait_entry(
        eng.redis,
        monitor.customer_id,
        lambda e: (
            e["type"] == "traffic" and e["session_id"] == monitor.session_id and e["fence"] != monitor.fence
        ),
        timeout,
        f"samples of {monitor.customer_id}'s next attempt",
    )


def stop_every_monitor(client: redis.Redis, timeout: float) -> None:
    """Stop every monitor the service lists (one that ended meanwhile is fine), then wait
    until every slot is given back: the next test has the whole cap."""
    for m in service.status()["monitors"]:
        try:
            service.stop(m["customer_id"])
        except service.NotMonitored:
            pass
    wait_for(lambda: not live_tokens(client), timeout, what="every slot given back")


def live_tokens(client: redis.Redis | None = None) -> set[str]:
    """The tokens of every live lease, in `client`'s Redis (default: this process's)."""
    semaphore = runtime.current().semaphore if client is None else Semaphore(client)
    return {h.token for h in semaphore.holders()}


def token(session_id: str, attempt: int) -> str:
    return str(Token(session_id, attempt))


def session_row(session_id: object) -> MonitorSession:
    """The monitor_sessions row of a session the test started (it must exist)."""
    row = sessions.get(session_id)
    assert row is not None, f"no monitor_sessions row for {session_id}"
    return row


def open_session_row(customer_id: str) -> MonitorSession:
    """The customer's open session row (desired running), which the test expects."""
    row = sessions.open_for_customer(customer_id)
    assert row is not None, f"no open session for customer {customer_id}"
    return row


class PeakSlots(Sampler):
    """The most slots in use at once while the `with` block runs, sampled in the
    background; Redis being down or frozen just skips a sample."""

    def __init__(self, url: str) -> None:
        super().__init__()
        # Short timeouts: the watcher must not hang on a frozen server.
        self.sem = Semaphore(redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3))
        self.peak = 0

    def sample(self) -> None:
        try:
            self.peak = max(self.peak, self.sem.in_use())
        except redis.RedisError:
            pass

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.sem.redis.close()
