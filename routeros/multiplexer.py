"""Tag routing over one connection: one reader thread, many one-shot calls and streams.

Rules (docs/routeros.md, Tags, Cancel and Reply words):
- a tag is registered before its command is written, so a fast reply is never missed;
- a tag stays routable until its ``!done`` (after ``/cancel`` the router still sends
  ``!trap category=2``, maybe ``!empty``, then ``!done`` for it);
- ``!empty`` is ignored; a sentence whose tag we do not know (or an untagged one: we
  never send untagged commands after login) is dropped and counted, never fatal;
- the reader never blocks on a consumer: streams hand samples to a bounded queue
  (see ``Stream``), calls to a list.

Values stay the router's raw strings; ``.section``/``.id`` are kept in the dicts.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from librouteros import exceptions as lr_exc

from routeros.connection import Connection
from routeros.errors import ProtocolError, TrapError, UnreachableError

log = logging.getLogger(__name__)

EventKind = Literal["data", "reconnecting", "resumed", "trap", "done", "failed"]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One thing a stream's consumer must know: a sample, or a change in the stream's life."""

    kind: EventKind
    data: dict[str, str] | None = None
    message: str | None = None
    category: int | None = None


def parse_category(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


class Route(Protocol):
    def on_sentence(self, reply: str, attrs: dict[str, str]) -> None: ...

    def on_lost(self, reason: str) -> None: ...


class PendingCall:
    """Collects one tagged command's replies until ``!done`` (or until the connection dies)."""

    __slots__ = ("rows", "traps", "finished", "error")

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []
        self.traps: list[tuple[str, int | None]] = []
        self.finished = threading.Event()
        self.error: str | None = None

    def on_sentence(self, reply: str, attrs: dict[str, str]) -> None:
        if reply == "!re":
            self.rows.append(attrs)
        elif reply == "!trap":
            self.traps.append((attrs.get("message", ""), parse_category(attrs.get("category"))))
        elif reply == "!done":
            if attrs:  # e.g. =ret= after add
                self.rows.append(attrs)
            self.finished.set()

    def on_lost(self, reason: str) -> None:
        self.error = reason
        self.finished.set()

    def result(self) -> list[dict[str, str]]:
        """Rows, or the router's trap(s) as TrapError, or UnreachableError if the connection died."""
        if self.traps:
            message, category = self.traps[0]
            raise TrapError(message, category, self.traps)
        if self.error is not None:
            raise UnreachableError(self.error)
        return self.rows


class Absorber:
    """Route for replies nobody waits for (keepalive probes, /cancel itself)."""

    __slots__ = ()

    def on_sentence(self, reply: str, attrs: dict[str, str]) -> None:
        pass

    def on_lost(self, reason: str) -> None:
        pass


ABSORB = Absorber()


class Multiplexer:
    """Owns one Connection and its reader thread; routes every reply sentence by ``.tag``.

    ``on_lost(mux, reason)`` is called exactly once, from whichever thread first
    notices the connection is gone (reader EOF/!fatal/garbage, a failed write, kill()).
    """

    def __init__(self, conn: Connection, on_lost: Callable[[Multiplexer, str], None]) -> None:
        self.conn = conn
        self._on_lost = on_lost
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self.dead = False
        self.dead_reason = ""
        self.unknown_tag_sentences = 0
        self.sentences_in = 0
        self._reader = threading.Thread(
            target=self._read_loop, name=f"routeros-reader-{conn.endpoint.label}", daemon=True
        )

    def start(self) -> None:
        self._reader.start()

    @property
    def last_rx(self) -> float:
        return self.conn.last_rx

    @property
    def open_routes(self) -> int:
        return len(self._routes)

    def register(self, tag: str, route: Route) -> None:
        with self._lock:
            if self.dead:
                raise UnreachableError(self.dead_reason)
            if tag in self._routes:  # the router does not enforce uniqueness; we must
                raise ValueError(f"tag {tag!r} already in use")
            self._routes[tag] = route

    def unregister(self, tag: str) -> None:
        with self._lock:
            self._routes.pop(tag, None)

    def send(self, words: list[str]) -> None:
        """Write one sentence. Any failure kills the connection (the stream may be half-written)."""
        if self.dead:
            raise UnreachableError(self.dead_reason)
        try:
            self.conn.write_sentence(words)
        except UnicodeError as exc:  # raised while encoding, before a byte is written
            raise ProtocolError(f"cannot encode command: {exc}") from None
        except (OSError, lr_exc.LibRouterosError) as exc:
            reason = f"write failed: {exc}"
            self.kill(reason)
            raise UnreachableError(reason) from exc

    def kill(self, reason: str) -> None:
        """Declare the connection dead now (idempotent); unblocks the reader."""
        with self._lock:
            if self.dead:
                return
            self.dead = True
            self.dead_reason = reason
            routes = list(self._routes.values())
            self._routes.clear()
        self.conn.kill()
        for route in routes:
            route.on_lost(reason)
        self._on_lost(self, reason)

    def close(self, reason: str = "closed") -> None:
        self.kill(reason)
        if self._reader.is_alive() and threading.current_thread() is not self._reader:
            self._reader.join(timeout=5)
        self.conn.close()

    def _read_loop(self) -> None:
        reason = "connection closed"
        try:
            while not self.dead:
                # Empty sentences are skipped, and a reply beyond the bounds is a
                # ProtocolError, by the reader (connection.BoundedApiProtocol).
                reply, words = self.conn.read_sentence()
                self.sentences_in += 1
                self._dispatch(reply, words)
        except lr_exc.FatalError as exc:
            reason = f"router sent !fatal: {exc}"
        except lr_exc.ConnectionClosed as exc:
            reason = str(exc) or "connection closed"
        except lr_exc.ProtocolError as exc:
            reason = f"protocol error: {exc}"
        except Exception as exc:  # a bug here must cost a reconnect, not a silent dead reader
            log.exception("reader for %s failed", self.conn.endpoint.label)
            reason = f"reader failed: {type(exc).__name__}"
        finally:
            self.kill(reason)
            self.conn.close()

    def _dispatch(self, reply: str, words: tuple[str, ...]) -> None:
        tag: str | None = None
        attrs: dict[str, str] = {}
        for word in words:
            if word[:1] == "=":
                key, _, value = word[1:].partition("=")
                attrs[key] = value
            elif word[:5] == ".tag=":  # position of .tag is not fixed
                tag = word[5:]
        if reply == "!empty":
            return
        if tag is None or (route := self._routes.get(tag)) is None:
            self.unknown_tag_sentences += 1
            return
        if reply == "!done":
            with self._lock:
                self._routes.pop(tag, None)
        elif reply not in ("!re", "!trap"):
            return  # a reply word newer than this client (as !empty was before 7.18)
        route.on_sentence(reply, attrs)


class Stream:
    """A long-running tagged command whose replies arrive as StreamEvents.

    Back-pressure policy: at most ``maxsize`` data events wait in the queue; when a
    new sample arrives to a full queue the OLDEST sample is dropped and ``dropped``
    is incremented (an operator wants the newest rate, not a backlog). Life-cycle
    events (reconnecting, resumed, trap, done, failed) are never dropped. The
    reader thread therefore never waits for a consumer, and a slow consumer only
    loses its own old samples.

    The Stream outlives connections: after a reconnect the client re-issues the same
    command under a fresh tag (``tag`` changes).
    """

    def __init__(
        self,
        words: list[str],
        maxsize: int,
        on_cancel: Callable[[Stream], None],
        on_drop: Callable[[], None],
        on_closed: Callable[[Stream], None],
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.words = words
        self.maxsize = maxsize
        self.tag = ""
        self.dropped = 0
        self.closed = False
        self.cancelled = False
        # The fields below are guarded by the client's lock.
        self.flowing = False  # issued on the current connection
        self.needs_resume = False  # "reconnecting" was queued; "resumed" is owed
        self.mux: Multiplexer | None = None
        self._issue_lock = threading.Lock()  # a /cancel never overtakes the command it cancels
        self._traps: list[tuple[str, int | None]] = []
        self._events: deque[StreamEvent] = deque()
        self._ndata = 0
        self._cond = threading.Condition(threading.Lock())
        self._woken = False  # wake(): the next (or current) empty get() returns None at once
        # A consumer may take samples itself, on the reader thread, while it is parked in
        # get() with nothing queued (`on_data`; True: taken, False: queued as usual): such
        # a sample wakes nobody. It runs under this stream's lock, so the consumer cannot
        # leave get() meanwhile and what it touches is the consumer's alone; it must be
        # quick, must not block and must not call this stream (wake() would deadlock).
        self.on_data: Callable[[dict[str, str]], bool] | None = None
        self._parked = False  # a consumer waits in get() (guarded by _cond)
        self._on_cancel = on_cancel
        self._on_drop = on_drop
        self._on_closed = on_closed

    def __repr__(self) -> str:
        return f"<Stream {self.words[0]} tag={self.tag!r} closed={self.closed}>"

    def get(self, timeout: float | None = None) -> StreamEvent | None:
        """Next event; None when ``timeout`` passes first, or at once when closed and drained."""
        with self._cond:
            if not self._events and not self.closed and not self._woken:
                self._parked = True
                try:
                    self._cond.wait_for(lambda: self._events or self.closed or self._woken, timeout)
                finally:
                    self._parked = False
            self._woken = False
            if not self._events:
                return None
            event = self._events.popleft()
            if event.kind == "data":
                self._ndata -= 1
            return event

    def wake(self) -> None:
        """Make a consumer blocked in (or about to enter) get() return None now, e.g. to
        look at a stop request; queued events are untouched."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def pending(self) -> int:
        return len(self._events)

    def cancel(self) -> None:
        """Stop the command (``/cancel =tag=``); a final "done" event follows. Idempotent."""
        self._on_cancel(self)

    # --- called by the multiplexer / client -----------------------------------------

    def on_sentence(self, reply: str, attrs: dict[str, str]) -> None:
        if reply == "!re":
            if not self.cancelled:
                self.push(StreamEvent("data", attrs))
        elif reply == "!trap":
            self._traps.append((attrs.get("message", ""), parse_category(attrs.get("category"))))
        else:  # !done: the command is over on the router
            self.finish()

    def on_lost(self, reason: str) -> None:
        # The client decides (re-issue or finish) in its lost handler; nothing to do per route.
        pass

    def finish(self, failed: str | None = None) -> bool:
        """Queue the terminal event, once. A cat-2 trap after our own cancel is a normal end."""
        if failed is not None:
            return self.push(StreamEvent("failed", message=failed), terminal=True)
        if self._traps and not self.cancelled:
            message = "; ".join(m for m, _ in self._traps)
            return self.push(StreamEvent("trap", message=message, category=self._traps[0][1]), terminal=True)
        return self.push(StreamEvent("done"), terminal=True)

    def push(self, event: StreamEvent, terminal: bool = False) -> bool:
        """Enqueue without blocking; returns False if the stream was already closed."""
        dropped = False
        with self._cond:
            if self.closed:
                return False
            if event.kind == "data" and self._taken_by_consumer(event):
                return True
            if event.kind == "data":
                if self._ndata >= self.maxsize:
                    self._drop_oldest_data()
                    dropped = True
                else:
                    self._ndata += 1
            self._events.append(event)
            if terminal:
                self.closed = True
            self._cond.notify_all()
        if dropped:
            self._on_drop()
        if terminal:
            self._on_closed(self)
        return True

    def _taken_by_consumer(self, event: StreamEvent) -> bool:  # under self._cond
        """Did the parked consumer's `on_data` take this sample? Never with anything
        queued before it (samples stay in order) or a wake-up pending."""
        on_data = self.on_data
        if on_data is None or not self._parked or self._events or self._woken or event.data is None:
            return False
        try:
            return on_data(event.data)
        except Exception:  # the consumer's bug must not cost the connection: queue it
            log.exception("stream %s: on_data failed; the sample is queued", self.words[0])
            return False

    def _drop_oldest_data(self) -> None:
        self.dropped += 1
        if self._events[0].kind == "data":
            self._events.popleft()
            return
        for i, queued in enumerate(self._events):
            if queued.kind == "data":
                del self._events[i]
                return
