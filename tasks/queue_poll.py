"""One `/queue/simple/print` per router per interval, shared by the queue monitors of a process.

A queue monitor (a hotspot customer's `<hotspot-u>` queue found by name, a static
customer's queue found by target address; tasks/sources.py, QueueSource) reads one row
of `/queue/simple` once per interval. Each used to send its own `print ?name=…`: 500 of
them were 500 commands a second on the router. Now each subscribes here with its query
word, and one poller thread per (router, interval, proplist) in the process sends ONE
print of every queue per interval on the shared connection (tasks/hub.py) and hands
each subscriber the rows its word matches: `?name=X` picks the rows whose `name` is X,
in the router's order, which is what the router answers to that query word
(docs/routeros.md, Word kinds); or the print's error. A `target` is matched on its whole
value, as the simulator's query matches it: a queue with several targets would not be
found by one of them (today's customers have one, `address/32`; unverified on a router).

Life: the thread starts with the first subscriber and ends when the last one leaves;
its share of the connection goes with it, so a router nobody monitors is logged out as
before. The first subscriber of an idle poll gets a print at once (unless the last one
was less than an interval ago); one that joins mid-cycle gets the next cycle's rows,
within one interval.

Trouble: a failed print (unreachable or timed out, trapped, denied, login refused, the
connection not up yet) goes to every subscriber of that cycle, and each monitor backs
off as it always did. The poll then waits on the hub's login ladder (CONNECT_BACKOFF_*:
[0.5, 1] s doubling to [15, 30] s, never less than an interval) before its next print,
and hands the remembered failure at once to whoever subscribes before then, as the hub
replays a failed login: a router in trouble sees one print per step, not one per monitor.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Collection, Hashable, Sequence

from common.backoff import Backoff
from routeros import LoginError, RouterError, TrapError, UnreachableError
from tasks.hub import CONNECT_BACKOFF_INITIAL, CONNECT_BACKOFF_MAX, RouterHandle

log = logging.getLogger(__name__)

COMMAND = "/queue/simple/print"

Row = dict[str, str]


def parse_query(word: str) -> tuple[str, str]:
    """A `?name=value` query word -> (name, value); the only kind a queue monitor sends."""
    field, eq, value = word[1:].partition("=")
    if not word.startswith("?") or not eq or not field or field[0] in "#-<>=":
        raise ValueError(f"not a ?name=value query word: {word!r}")
    return field, value


class Cycle:
    """One print's outcome, the same object for every subscriber of the cycle."""

    __slots__ = ("error", "received", "_rows", "_index")

    def __init__(self, rows: list[Row] | None, error: RouterError | None, fields: Collection[str]) -> None:
        self.error = error
        self.received = time.monotonic()
        # None: the shared connection was not up within the print's timeout.
        self._rows = rows
        # For the fields the subscribers used when the print went out: value -> rows with
        # that value, in the router's order.
        self._index: dict[str, dict[str, list[Row]]] = {field: {} for field in fields}
        for row in rows or ():
            for field, by_value in self._index.items():
                value = row.get(field)
                if value is not None:
                    by_value.setdefault(value, []).append(row)

    @property
    def failed(self) -> bool:
        return self.error is not None or self._rows is None

    def rows(self, field: str, value: str) -> list[Row] | None:
        """What `?field=value` would have returned ([] when no queue matches); None when
        the connection was not up. Raises the print's error (a copy per caller: threads
        raising one object would share its traceback)."""
        if self.error is not None:
            raise copy.copy(self.error)
        if self._rows is None:
            return None
        by_value = self._index.get(field)
        if by_value is None:  # a subscriber of another field joined while this print ran
            return [row for row in self._rows if row.get(field) == value]
        return by_value.get(value, [])


class Subscription:
    """One monitor's place in its router's poll: `get()` the next cycle, `close()` to leave."""

    def __init__(self, poll: QueuePoll, field: str, value: str) -> None:
        self.field = field
        self.value = value
        self._poll = poll
        self._cond = threading.Condition(threading.Lock())
        self._cycle: Cycle | None = None
        self._woken = False
        self._closed = False

    def get(self, timeout: float) -> Cycle | None:
        """The newest cycle not read yet; None when `timeout` passes first or on wake()."""
        with self._cond:
            if self._cycle is None and not self._woken:
                self._cond.wait_for(lambda: self._cycle is not None or self._woken, timeout)
            self._woken = False
            cycle, self._cycle = self._cycle, None
            return cycle

    def rows(self, cycle: Cycle) -> list[Row] | None:
        return cycle.rows(self.field, self.value)

    def wake(self) -> None:
        """Make a get() that is blocked (or about to block) return None now."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def deliver(self, cycle: Cycle) -> None:
        # The newest wins: a monitor that missed a cycle wants the current rate, not a backlog.
        with self._cond:
            self._cycle = cycle
            self._cond.notify_all()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._poll.leave(self)


class QueuePoll:
    """The poller of one router (for one interval and proplist); see the module docstring."""

    def __init__(self, interval: float, proplist: tuple[str, ...]) -> None:
        self.interval = interval
        self.proplist = proplist
        self._cond = threading.Condition(threading.Lock())
        self._subscribers: set[Subscription] = set()
        self._running = False
        self._printing = False
        self._next = 0.0  # monotonic: no print before this
        self._failure: Cycle | None = None  # the last print's, while it is the last one
        self._backoff = Backoff(CONNECT_BACKOFF_INITIAL, CONNECT_BACKOFF_MAX)

    def join(self, handle: RouterHandle, field: str, value: str) -> Subscription:
        if field not in self.proplist:
            raise ValueError(f"{field!r} is not in the poll's proplist {self.proplist}")
        subscription = Subscription(self, field, value)
        with self._cond:
            self._subscribers.add(subscription)
            if self._failure is not None and not self._printing and time.monotonic() < self._next:
                subscription.deliver(self._failure)
            if not self._running:
                self._running = True
                threading.Thread(
                    target=self._run, args=(handle.share(),), name=f"queue-poll-{handle.label}", daemon=True
                ).start()
        return subscription

    def leave(self, subscription: Subscription) -> None:
        with self._cond:
            self._subscribers.discard(subscription)
            if not self._subscribers:
                self._cond.notify_all()  # the thread ends now, not at its next print

    def subscribers(self) -> int:
        with self._cond:
            return len(self._subscribers)

    def _run(self, handle: RouterHandle) -> None:
        try:
            while True:
                with self._cond:
                    while self._subscribers and (wait := self._next - time.monotonic()) > 0:
                        self._cond.wait(wait)
                    if not self._subscribers:
                        self._running = False
                        return
                    # The next print: one interval after this one was due (a steady cadence),
                    # or one interval from now when this one is late by more than that (the
                    # poll was idle).
                    late = time.monotonic() - self._next
                    self._next = (self._next if late < self.interval else time.monotonic()) + self.interval
                    fields = {s.field for s in self._subscribers}
                    self._printing = True
                cycle = self._print(handle, fields)
                with self._cond:
                    self._printing = False
                    self._settle(cycle)
                    subscribers = list(self._subscribers)
                for subscription in subscribers:
                    subscription.deliver(cycle)
        finally:
            handle.close()

    def _print(self, handle: RouterHandle, fields: Collection[str]) -> Cycle:
        try:
            # Bounded as each monitor's own print was: min(interval, 1 s).
            rows = handle.call(COMMAND, proplist=self.proplist, timeout=min(self.interval, 1.0))
            return Cycle(rows, None, fields)
        except RouterError as exc:
            if isinstance(exc, LoginError) or not isinstance(exc, (TrapError, UnreachableError)):
                # The client failed for good (re-login refused, garbage): the next print
                # logs in again through the hub.
                handle.invalidate()
            return Cycle(None, exc, fields)
        except Exception as exc:  # a bug here must cost a cycle, never the poll thread
            log.exception("queue poll of %s failed", handle.label)
            return Cycle(None, UnreachableError(f"queue poll failed: {type(exc).__name__}"), fields)

    def _settle(self, cycle: Cycle) -> None:
        if not cycle.failed:
            self._failure = None
            self._backoff.reset()
            return
        self._failure = cycle
        self._next = max(self._next, cycle.received + self._backoff.next_delay())


_polls: dict[tuple[Hashable, float, tuple[str, ...]], QueuePoll] = {}
_polls_lock = threading.Lock()


def subscribe(handle: RouterHandle, query: str, *, interval: float, proplist: Sequence[str]) -> Subscription:
    """Join the poll of `handle`'s router for the rows `query` (`?name=…`) matches."""
    field, value = parse_query(query)
    key = (handle.router, float(interval), tuple(proplist))
    with _polls_lock:
        poll = _polls.get(key)
        if poll is None:
            poll = _polls[key] = QueuePoll(float(interval), tuple(proplist))
    return poll.join(handle, field, value)


def poll_of(handle: RouterHandle, *, interval: float, proplist: Sequence[str]) -> QueuePoll | None:
    """The poll of `handle`'s router, if a monitor ever subscribed to it (tests, benches)."""
    with _polls_lock:
        return _polls.get((handle.router, float(interval), tuple(proplist)))
