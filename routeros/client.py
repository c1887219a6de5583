"""RouterClient: a supervised, multiplexed API connection to one router.

One connection carries any number of one-shot calls and long-running streams. A
supervisor thread watches it: when the link is idle for ``keepalive`` seconds it
sends a cheap tagged probe; no bytes back within ``probe_timeout`` means the link is
stalled and it is killed. A dead link (EOF, reset, ``!fatal``, stall, garbage) is
re-dialled with exponential backoff and jitter, and every live stream is re-issued
under a fresh tag. Stream consumers see "reconnecting" then "resumed" (or "failed"
when the client is closed or the router now refuses the login); pending one-shot
calls fail with UnreachableError.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from common.backoff import Backoff
from routeros.connection import RouterEndpoint, open_connection
from routeros.errors import LoginError, ProtocolError, RouterError, UnreachableError
from routeros.multiplexer import ABSORB, Multiplexer, PendingCall, Stream, StreamEvent

log = logging.getLogger(__name__)

PROBE_COMMAND = ["/system/identity/print", "=.proplist=name"]


def build_words(
    command: str,
    attrs: Mapping[str, Any] | None = None,
    queries: Sequence[str] = (),
    proplist: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> list[str]:
    """The sentence for a command: attribute words, then .proplist, then query words (order kept).

    Raises UnicodeEncodeError for a word the router's `encoding` cannot carry."""
    if not command.startswith("/"):
        raise ValueError(f"command must start with '/': {command!r}")
    words = [command]
    words.extend(f"={key}={value}" for key, value in (attrs or {}).items())
    if proplist:
        words.append("=.proplist=" + ",".join(proplist))
    words.extend(queries)
    for word in words:
        word.encode(encoding)  # fail here (ProtocolError below), never half-way through a write
    return words


class RouterClient:
    """Supervised multiplexed connection. Thread-safe; see the module docstring."""

    def __init__(
        self,
        endpoint: RouterEndpoint,
        keepalive: float = 10.0,
        *,
        probe_timeout: float | None = None,
        backoff_initial: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        if keepalive <= 0:
            raise ValueError("keepalive must be > 0")
        self.endpoint = endpoint
        self.keepalive = keepalive
        self.probe_timeout = endpoint.timeout if probe_timeout is None else probe_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # Used by the supervisor thread only; built here so bad values fail in the caller.
        self._backoff = Backoff(backoff_initial, backoff_max, first_immediate=True)
        self._cond = threading.Condition(threading.RLock())
        self._mux: Multiplexer | None = None
        self._streams: set[Stream] = set()
        self._closed = False
        self._failed: LoginError | None = None
        self._need_reconnect = False
        self._supervisor: threading.Thread | None = None
        self._tags = itertools.count(1)
        self._probe_sent_at = 0.0
        self._last_error = ""
        self._reconnects = 0
        self._dropped = 0
        self._unknown_done = 0  # unknown-tag counts of connections already gone
        self._sentences_done = 0

    def __repr__(self) -> str:
        return f"<RouterClient {self.endpoint!r} connected={self.connected}>"

    def __enter__(self) -> RouterClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        mux = self._mux
        return mux is not None and not mux.dead

    # --- public API ------------------------------------------------------------------

    def connect(self) -> None:
        """Dial and log in; raises LoginError / UnreachableError / ProtocolError. Then supervise."""
        with self._cond:
            if self._closed:
                raise UnreachableError("client is closed")
            if self._supervisor is not None:
                return
        mux = self._open()
        with self._cond:
            if self._closed or self._supervisor is not None:
                mux.close("superseded")
                return
            self._mux = mux
            self._supervisor = threading.Thread(
                target=self._supervise, name=f"routeros-supervisor-{self.endpoint.label}", daemon=True
            )
            self._supervisor.start()

    def call(
        self,
        command: str,
        attrs: Mapping[str, str] | None = None,
        *,
        queries: Sequence[str] = (),
        proplist: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> list[dict[str, str]]:
        """Run one command to its ``!done``; rows as raw strings. Raises TrapError on ``!trap``.

        While the client is reconnecting the call waits (up to ``timeout``) for the link.
        """
        timeout = self.endpoint.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        words = self._words(command, attrs, queries, proplist)
        mux = self._wait_connected(deadline)
        tag = f"c{next(self._tags)}"
        pending = PendingCall()
        mux.register(tag, pending)
        try:
            mux.send([*words, f".tag={tag}"])
        except ProtocolError:
            mux.unregister(tag)
            raise
        if not pending.finished.wait(max(0.0, deadline - time.monotonic())):
            # Leave the route in place: the late replies must still find their tag.
            self._send_cancel(mux, tag)
            raise UnreachableError(f"{self.endpoint.label}: no reply to {command} within {timeout:g}s")
        return pending.result()

    def stream(
        self,
        command: str,
        attrs: Mapping[str, str] | None = None,
        *,
        proplist: Sequence[str] | None = None,
        maxsize: int = 64,
    ) -> Stream:
        """Start a long-running command (monitor-traffic, listen...); events arrive on the Stream."""
        words = self._words(command, attrs, (), proplist)
        stream = Stream(words, maxsize, self._cancel_stream, self._count_drop, self._forget)
        with self._cond:
            self._check_usable()
            self._streams.add(stream)
            mux = self._mux
            if mux is None or mux.dead:
                self._mark_reconnecting(stream)
                return stream
        self._issue(stream, mux)
        return stream

    def stats(self) -> dict[str, Any]:
        with self._cond:
            self._purge_closed()
            mux = self._mux if self._mux is not None and not self._mux.dead else None
            return {
                "connected": mux is not None,
                "reconnects": self._reconnects,
                "unknown_tag_sentences": self._unknown_done + (mux.unknown_tag_sentences if mux else 0),
                "sentences_in": self._sentences_done + (mux.sentences_in if mux else 0),
                "dropped": self._dropped,
                "open_streams": len(self._streams),
                "open_routes": mux.open_routes if mux else 0,
                "last_error": self._last_error,
            }

    def close(self) -> None:
        """Stop everything: streams get "failed", pending calls UnreachableError. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            mux, self._mux = self._mux, None
            streams = list(self._streams)
            self._streams.clear()
            self._cond.notify_all()
        for stream in streams:
            stream.finish(failed="client closed")
        if mux is not None:
            mux.close("client closed")
        sup = self._supervisor
        if sup is not None and sup is not threading.current_thread():
            sup.join(timeout=5)

    # --- streams ---------------------------------------------------------------------

    def _issue(self, stream: Stream, mux: Multiplexer) -> None:
        """Write the stream's command on ``mux`` under a fresh tag (registered first)."""
        tag = f"s{next(self._tags)}"
        with stream._issue_lock:
            with self._cond:
                if stream.closed or stream.cancelled:
                    return
                if mux is not self._mux or mux.dead:
                    self._mark_reconnecting(stream)
                    return
                stream.tag = tag
                stream.mux = mux
                stream._traps.clear()
                try:
                    mux.register(tag, stream)
                except UnreachableError:
                    stream.mux = None
                    self._mark_reconnecting(stream)
                    return
            try:
                mux.send([*stream.words, f".tag={tag}"])
            except RouterError:
                return  # the lost handler has marked it reconnecting; it is re-issued later
        with self._cond:
            if stream.mux is mux and not stream.flowing:
                stream.flowing = True
                if stream.needs_resume:
                    stream.needs_resume = False
                    stream.push(StreamEvent("resumed"))

    def _mark_reconnecting(self, stream: Stream) -> None:
        stream.flowing = False
        stream.mux = None
        if not stream.needs_resume:
            stream.needs_resume = True
            stream.push(StreamEvent("reconnecting", message=self._last_error or "not connected"))

    def _cancel_stream(self, stream: Stream) -> None:
        with stream._issue_lock:
            with self._cond:
                if stream.cancelled or stream.closed:
                    return
                stream.cancelled = True
                mux, tag = stream.mux, stream.tag
                if mux is None or mux.dead:
                    # Nothing runs on the router for it: end it here.
                    stream.finish()
                    self._streams.discard(stream)
                    return
            self._send_cancel(mux, tag)

    def _send_cancel(self, mux: Multiplexer, tag: str) -> None:
        ctag = f"x{next(self._tags)}"
        try:
            mux.register(ctag, ABSORB)
            mux.send(["/cancel", f"=tag={tag}", f".tag={ctag}"])
        except RouterError:
            pass  # connection gone: the lost handler ends the cancelled stream

    def _count_drop(self) -> None:
        self._dropped += 1

    def _forget(self, stream: Stream) -> None:
        with self._cond:
            self._streams.discard(stream)

    def _purge_closed(self) -> None:
        self._streams = {s for s in self._streams if not s.closed}

    # --- supervision -----------------------------------------------------------------

    def _open(self) -> Multiplexer:
        conn = open_connection(self.endpoint)
        mux = Multiplexer(conn, self._on_lost)
        mux.start()
        return mux

    def _on_lost(self, mux: Multiplexer, reason: str) -> None:
        """Called once per connection, from whichever thread noticed first. Never blocks."""
        with self._cond:
            self._unknown_done += mux.unknown_tag_sentences
            self._sentences_done += mux.sentences_in
            if mux is not self._mux:
                return
            self._mux = None
            self._last_error = reason
            if self._closed:
                return
            log.warning("connection to %s lost: %s", self.endpoint.label, reason)
            self._need_reconnect = True
            for stream in list(self._streams):
                if stream.mux is not mux:
                    continue
                if stream.cancelled or stream._traps:
                    stream.finish()  # it was ending anyway: done / trap
                    self._streams.discard(stream)
                else:
                    self._mark_reconnecting(stream)
            self._cond.notify_all()

    def _install(self, mux: Multiplexer) -> None:
        with self._cond:
            if self._closed:
                mux.close("client closed")
                return
            self._mux = mux
            self._need_reconnect = False
            self._probe_sent_at = 0.0
            self._reconnects += 1
            self._purge_closed()
            streams = [s for s in self._streams if s.mux is None and not s.cancelled]
            self._cond.notify_all()
        log.info("reconnected to %s; re-issuing %d streams", self.endpoint.label, len(streams))
        for stream in streams:
            self._issue(stream, mux)

    def _supervise(self) -> None:
        backoff = self._backoff
        tick = min(max(min(self.keepalive, self.probe_timeout) / 4, 0.05), 1.0)
        while True:
            with self._cond:
                if self._closed:
                    return
                reconnect = self._need_reconnect
                if not reconnect:
                    self._cond.wait(tick)
                    if self._closed:
                        return
                    reconnect = self._need_reconnect
                if reconnect:
                    self._cond.wait(backoff.next_delay())
                    if self._closed:
                        return
            if not reconnect:
                self._watchdog()
                continue
            try:
                mux = self._open()
            except LoginError as exc:
                self._give_up(exc)
                return
            except RouterError as exc:
                with self._cond:
                    self._last_error = str(exc)
                log.warning(
                    "reconnect to %s failed (attempt %d): %s", self.endpoint.label, backoff.failures, exc
                )
                continue
            backoff.reset()
            self._install(mux)

    def _watchdog(self) -> None:
        mux = self._mux
        if mux is None or mux.dead:
            return
        now = time.monotonic()
        last_rx = mux.last_rx
        if self._probe_sent_at > last_rx:
            if now - self._probe_sent_at >= self.probe_timeout:
                mux.kill(f"stalled: no reply to keepalive within {self.probe_timeout:g}s")
            return
        if now - last_rx >= self.keepalive:
            tag = f"k{next(self._tags)}"
            self._probe_sent_at = now
            try:
                mux.register(tag, ABSORB)
                mux.send([*PROBE_COMMAND, f".tag={tag}"])
            except RouterError:
                pass  # the lost handler takes it from here

    def _give_up(self, exc: LoginError) -> None:
        log.error("re-login to %s refused: %s", self.endpoint.label, exc.message)
        with self._cond:
            self._failed = exc
            self._last_error = str(exc)
            streams = list(self._streams)
            self._streams.clear()
            self._cond.notify_all()
        for stream in streams:
            stream.finish(failed=f"login refused: {exc.message}")

    # --- helpers ---------------------------------------------------------------------

    def _words(
        self,
        command: str,
        attrs: Mapping[str, str] | None,
        queries: Sequence[str],
        proplist: Sequence[str] | None,
    ) -> list[str]:
        try:
            return build_words(command, attrs, queries, proplist, self.endpoint.codec)
        except UnicodeEncodeError as exc:  # a lone surrogate, or a letter the router's code page lacks
            raise ProtocolError(
                f"cannot encode {command!r} in {self.endpoint.encoding}: {exc.reason}"
            ) from None

    def _check_usable(self) -> None:
        if self._closed:
            raise UnreachableError("client is closed")
        if self._failed is not None:
            raise LoginError(self._failed.message, self._failed.category, self._failed.traps)
        if self._supervisor is None:
            raise UnreachableError("not connected: call connect() first")

    def _wait_connected(self, deadline: float) -> Multiplexer:
        with self._cond:
            while True:
                self._check_usable()
                mux = self._mux
                if mux is not None and not mux.dead:
                    return mux
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UnreachableError(
                        f"{self.endpoint.label} unreachable: {self._last_error or 'not connected'}"
                    )
                self._cond.wait(remaining)
