"""Where a monitor's samples come from on the router, in the router's own terms.

Interface targets (`<pppoe-…>`, explicit interfaces) stream
`/interface/monitor-traffic =interface=<x> =interval=1`: the router pushes one
`!re` per second on a tagged command of the shared connection.

Queue targets (hotspot `<hotspot-u>` dynamic queues, static customers' queue by
target address) are polled: one `/queue/simple/print` of every queue per interval
per router in the process (tasks/queue_poll.py), from which each monitor takes
the rows its `?name=` / `?target=` query word matches. A queue is not an
interface, so monitor-traffic cannot watch it, and `print =interval=` has a
per-cycle `!done` whose behaviour is unverified (docs/routeros.md, Long-running
commands), which a one-shot print per interval sidesteps; sharing it makes that
one command a second per router, not per queue monitor. The queue's `rate` pair
is upload/download from the target's view (docs/routeros.md, Directions);
tasks/message.py does the mapping.

Every source yields `Reading`s; a source never sleeps longer than the timeout
it is given, so the monitor loop keeps its one-second stop latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from routeros import LoginError, RouterError, Stream, TrapError, UnreachableError
from tasks.hub import RouterHandle
from tasks.queue_poll import Subscription, subscribe

ReadingKind = Literal["sample", "reconnecting", "resumed", "gone", "offline", "failed", "denied"]

# The router's answer to a command the API user's group has no policy for
# (docs/routeros.md, Permissions). It carries no category, so the text is the signal.
DENIED_TEXT = "not enough permissions"

INTERFACE_PROPLIST = (
    "name",
    "rx-bits-per-second",
    "tx-bits-per-second",
    "rx-packets-per-second",
    "tx-packets-per-second",
)
QUEUE_PROPLIST = ("name", "target", "rate", "packet-rate", "max-limit")


@dataclass(frozen=True)
class Reading:
    """One thing the router told us: a sample, or a change in our ability to read."""

    kind: ReadingKind
    data: dict[str, str] | None = None
    reason: str = ""
    # When the monitor got it (monotonic): the start of its publish latency.
    received: float = field(default_factory=time.monotonic)


class Source(Protocol):
    def open(self, wait: float) -> bool: ...
    def read(self, timeout: float) -> Reading | None: ...
    def wake(self) -> None: ...  # any thread: a blocked read() returns None now
    def close(self) -> None: ...


class InterfaceSource:
    """A tagged monitor-traffic stream on the shared connection."""

    def __init__(
        self,
        handle: RouterHandle,
        interface: str,
        interval: float,
        on_sample: Callable[[dict[str, str]], bool] | None = None,
    ) -> None:
        """`on_sample`: may take a sample on the router's reader thread while read()
        waits, instead of read() returning it (routeros Stream.on_data: True = taken)."""
        self._handle = handle
        self._interface = interface
        self._interval = interval
        self._on_sample = on_sample
        self._stream: Stream | None = None

    def wake(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.wake()

    def open(self, wait: float) -> bool:
        """Issue the stream; False while the shared connection is still logging in."""
        self.close()
        self._stream = self._handle.stream(
            "/interface/monitor-traffic",
            {"interface": self._interface, "interval": _interval_word(self._interval)},
            proplist=INTERFACE_PROPLIST,
            wait=wait,
        )
        if self._stream is None:
            return False
        self._stream.on_data = self._on_sample
        return True

    def read(self, timeout: float) -> Reading | None:
        if self._stream is None:
            return Reading("gone", reason="stream not open")
        event = self._stream.get(timeout=timeout)
        if event is None:
            return None
        if event.kind == "data":
            return Reading("sample", dict(event.data or {}))
        if event.kind == "reconnecting":
            return Reading("reconnecting", reason=event.message or "router connection lost")
        if event.kind == "resumed":
            return Reading("resumed", reason=event.message or "router connection back")
        if event.kind == "trap":
            self._stream = None
            message = event.message or "router refused monitor-traffic"
            if DENIED_TEXT in message:
                return Reading("denied", reason=f"router denies /interface/monitor-traffic: {message}")
            # Typically the interface no longer exists (PPPoE session gone).
            return Reading("gone", reason=message)
        if event.kind == "done":
            self._stream = None
            return Reading("gone", reason="monitor-traffic ended")
        self._stream = None
        return Reading("failed", reason=event.message or "router connection failed")

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.cancel()
            except RouterError:
                pass


class QueueSource:
    """This monitor's queue, picked out of its router's shared `/queue/simple/print`
    (tasks/queue_poll.py) by its `?name=` / `?target=` query word."""

    def __init__(self, handle: RouterHandle, query: str, interval: float) -> None:
        self._handle = handle
        self._query = query
        self._interval = interval
        self._subscription: Subscription | None = None
        self._woken = threading.Event()  # set by wake() (a stop): reads return at once from now on

    def wake(self) -> None:
        self._woken.set()
        subscription = self._subscription
        if subscription is not None:
            subscription.wake()

    def open(self, wait: float) -> bool:
        """Connect (within `wait`) and join the router's poll; False while the shared
        connection is still logging in."""
        if self._handle.client(wait) is None:
            return False
        self.close()
        self._subscription = subscribe(
            self._handle, self._query, interval=self._interval, proplist=QUEUE_PROPLIST
        )
        return True

    def read(self, timeout: float) -> Reading | None:
        subscription = self._subscription
        if subscription is None:
            return Reading("gone", reason="queue source not open")
        if self._woken.is_set():
            return None
        cycle = subscription.get(max(0.0, timeout))
        if cycle is None:
            return None
        # A client that failed for good (re-login refused, garbage) is the poll's, and the
        # poll has replaced it: `offline` with the same words, never `failed`, which would
        # make the monitor drop its own connection (another one, with several per router).
        try:
            rows = subscription.rows(cycle)
        except LoginError as exc:
            return Reading("offline", reason=f"router refused the login: {exc.message}")
        except TrapError as exc:
            if DENIED_TEXT in exc.message:
                return Reading("denied", reason=f"router denies /queue/simple/print: {exc.message}")
            return Reading("gone", reason=exc.message)
        except UnreachableError as exc:
            return Reading("offline", reason=str(exc) or "router unreachable")
        except RouterError as exc:
            return Reading("offline", reason=str(exc) or "router error")
        if rows is None:
            return Reading("offline", reason="router connection not ready")
        if not rows:
            return Reading("gone", reason="queue not found (customer not logged in)")
        return Reading("sample", dict(rows[0]), received=cycle.received)

    def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()


def all_zero(row: dict[str, str] | None) -> bool:
    """A sample reading 0 in both directions (idle, or an interface that is gone)."""
    if not row:
        return False
    values: list[str | None] = [row.get("rx-bits-per-second"), row.get("tx-bits-per-second")]
    if "rate" in row:
        values = list(row["rate"].split("/"))
    return all(v is not None and v.strip() in ("0", "0bps") for v in values)


def _interval_word(interval: float) -> str:
    return str(int(interval)) if float(interval).is_integer() else f"{interval:g}"
