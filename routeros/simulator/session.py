"""One API connection: framing, login, dispatch, /cancel and the per-connection stream ticker."""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import os
import socket
import struct
from collections import deque
from collections.abc import Callable

from ..codec import CodecError, SentenceDecoder, encode_word
from .commands import Command, ListenStream, MonitorStream, TickedStream, UnknownCommand, resolve, run_command
from .query import apply_proplist
from .router import RouterCore
from .words import DONE, EMPTY, END, FATAL, RE, Tag, attr_word, reply, trap

__all__ = ["ApiSession", "challenge_response"]

# Streams due within this much of the earliest one go out in the same write: one wake-up
# and one transport.write per batch instead of one per stream.
_TICK_SLACK = 0.02
# Above this much unsent output the client is not keeping up: stream cycles are skipped
# (counted in stats) instead of buffering without bound, as a router's full socket would.
_WRITE_HIGH_WATER = 4 * 1024 * 1024


def challenge_response(password: str, challenge_hex: str) -> str:
    """Legacy (pre-6.43) login: "00" + md5(0x00 + password + challenge bytes)."""
    digest = hashlib.md5(b"\x00" + password.encode() + bytes.fromhex(challenge_hex)).hexdigest()
    return "00" + digest


class ApiSession(asyncio.Protocol):
    def __init__(self, router: RouterCore, service: str) -> None:
        self.router = router
        self.service = service
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.decoder = SentenceDecoder(max_word=router.config.max_word)
        self.logged_in = False
        self.closed = False
        self.peer_address = ""
        self.accepted = False
        self.running: dict[int, Command] = {}
        self._ids = itertools.count(1)
        self._challenge: str | None = None
        self._prelogin_commands = 0
        self._heap: list[tuple[float, int, TickedStream]] = []
        self._tick: asyncio.TimerHandle | None = None
        self._delayed: deque[tuple[float, bytes]] = deque()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._held_input: list[bytes] = []
        self._listening = False
        self._write_paused = False

    # ---- connection lifecycle -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer_address = str(peer[0]) if peer else ""
        router = self.router
        if router.full(self.service):
            router.refused_connections += 1
            self._refuse()
            return
        self.accepted = True
        router.sessions[self.service].add(self)
        router.sync_listeners()
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False

    def _refuse(self) -> None:
        mode = self.router.config.over_limit
        assert self.transport is not None
        if mode == "fatal":
            self.transport.write(FATAL + encode_word("too many sessions") + END)
            self.transport.close()
        elif mode == "reset":
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0 turns close into an RST, the closest thing to "refused" after accept.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:  # "close", and "refuse" for a connection accepted before the listener closed
            self.transport.close()
        self.closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._teardown()

    def _teardown(self) -> None:
        for cmd in self.running.values():
            cmd.stop()
        self.running.clear()
        self._heap.clear()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._listening:
            self.router.model.unsubscribe(self._on_model_event)
            self._listening = False
        if self.accepted:
            self.router.sessions[self.service].discard(self)
            self.accepted = False
            self.router.sync_listeners()

    def close(self, abort: bool = False) -> None:
        if self.transport is None or self.closed:
            return
        self.closed = True
        if abort:
            self.transport.abort()
        else:
            self.transport.close()
        self._teardown()

    def fatal(self, reason: str) -> None:
        """`!fatal <reason>` then close; bypasses latency so nothing can overtake it."""
        if self.transport is None or self.closed:
            return
        pending = b"".join(d for _, d in self._delayed)
        self._delayed.clear()
        self.transport.write(pending + FATAL + encode_word(reason) + END)
        self.close()

    def loop_time(self) -> float:
        return self.loop.time()

    # ---- output ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        # is_closing(): the peer is gone but connection_lost has not run yet (it is
        # scheduled); writing then only makes asyncio log "socket.send() raised exception".
        if self.closed or self.transport is None or self.transport.is_closing() or self.router.stalled:
            return
        latency = self.router.latency
        if latency <= 0 and not self._delayed:
            self.transport.write(data)
            self.router.bytes_sent += len(data)
            return
        # FIFO even if latency changes meanwhile: later data never overtakes earlier data.
        self._delayed.append((self.loop.time() + latency, data))
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_at(self._delayed[0][0], self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        now = self.loop.time()
        chunks = []
        while self._delayed and self._delayed[0][0] <= now + 0.001:
            chunks.append(self._delayed.popleft()[1])
        if chunks:
            data = b"".join(chunks)
            self.transport.write(data)
            self.router.bytes_sent += len(data)
        if self._delayed:
            self._flush_handle = self.loop.call_at(self._delayed[0][0], self._flush)

    # ---- input ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.router.stalled:
            # A hung router reads nothing; the bytes wait in its buffers until it recovers.
            self._held_input.append(data)
            return
        if self._held_input:
            data = b"".join(self._held_input) + data
            self._held_input.clear()
        try:
            sentences = self.decoder.feed(data)
        except CodecError:
            # Desynchronised framing cannot be recovered; only this connection pays for it.
            self.close(abort=True)
            return
        for words in sentences:
            if self.closed:
                return
            self._handle(words)
        if (
            not self.logged_in
            and not self.closed
            and self.decoder.pending > self.router.config.prelogin_max_bytes
        ):
            self.close(abort=True)

    def resume_input(self) -> None:
        if self._held_input and not self.closed:
            self.data_received(b"")

    def _handle(self, words: list[str]) -> None:
        command = words[0]
        tag: str | None = None
        attrs: dict[str, str] = {}
        queries: list[str] = []
        for w in words[1:]:
            if w.startswith("="):
                key, _, value = w[1:].partition("=")
                attrs[key] = value
            elif w.startswith("?"):
                queries.append(w)
            elif w.startswith(".tag="):
                tag = w[5:] or None
        tw = Tag(tag, self.router.config.tag_position)
        if not self.logged_in:
            if command == "/login":
                self._login(attrs, tw)
            else:
                self._not_logged_in(tw)
            return
        self.router.count_command(command)
        if command == "/cancel":
            self._cancel(attrs, tw)
            return
        if command == "/login":
            self.send(tw.sentence(DONE))
            return
        if command == "/quit":
            self.fatal("session terminated on request")
            return
        try:
            menu, verb = resolve(command)
        except UnknownCommand as exc:
            self.send(
                trap(f"no such command or directory ({exc.segment})", 0, tw)
                + trap("no such command prefix", 0, tw)
                + tw.sentence(DONE)
            )
            return
        if (menu, "print" if verb == "getall" else verb) in self.router.denied:
            self.router.denied_commands += 1
            self.send(trap("not enough permissions (9)", None, tw) + tw.sentence(DONE))
            return
        run_command(self, menu, verb, attrs, queries, tw)

    # ---- login ----------------------------------------------------------------------------

    def _not_logged_in(self, tw: Tag) -> None:
        cfg = self.router.config
        self._prelogin_commands += 1
        if cfg.pre_login == "fatal":
            self.fatal("not logged in")
        elif self._prelogin_commands > cfg.prelogin_max_commands:
            self.fatal("too many commands before login")
        else:
            self.send(trap("not logged in", None, tw) + tw.sentence(DONE))

    def _login(self, attrs: dict[str, str], tw: Tag) -> None:
        cfg = self.router.config
        version = cfg.version_tuple
        legacy = version < (6, 43, 0)
        name = attrs.get("name")
        if "response" in attrs:
            challenge, self._challenge = self._challenge, None
            ok = (
                challenge is not None
                and version < (6, 45, 1)
                and name == cfg.user
                and attrs["response"] == challenge_response(cfg.password, challenge)
            )
        elif legacy or (name is None and "password" not in attrs):
            # Pre-6.43 ignores name/password on the first /login and answers with a challenge;
            # later versions still hand out a challenge to an argument-less /login.
            self._challenge = os.urandom(16).hex()
            self.send(reply(DONE, [("ret", self._challenge)], tw))
            return
        else:
            ok = name == cfg.user and attrs.get("password", "") == cfg.password
        # A disabled user or a router still booting answers exactly like a wrong password.
        ok = ok and not self.router.refusing_logins
        if ok:
            self.logged_in = True
            self.router.logins += 1
            self.send(tw.sentence(DONE))
            return
        self.router.failed_logins += 1
        message = "cannot log in" if legacy else "invalid user name or password (6)"
        self.send(trap(message, None, tw) + tw.sentence(DONE))
        if cfg.failed_login == "close":
            self.close()

    # ---- running commands -----------------------------------------------------------------

    def register(self, cmd: Command) -> None:
        cmd.key = next(self._ids)
        self.running[cmd.key] = cmd
        if isinstance(cmd, ListenStream) and not self._listening:
            self.router.model.subscribe(self._on_model_event)
            self._listening = True

    def _finish(self, cmd: Command) -> None:
        cmd.stop()
        self.running.pop(cmd.key, None)

    def _cancel(self, attrs: dict[str, str], tw: Tag) -> None:
        target = attrs.get("tag")
        if target is None:
            victims = list(self.running.values())
        else:
            victims = [c for c in self.running.values() if c.tag.value == target]
        empty = self.router.empty_replies
        head: list[bytes] = []
        tail: list[bytes] = []
        if not victims and target is not None and self.router.config.cancel_unknown == "trap":
            head.append(trap(self.router.config.cancel_unknown_message, 0, tw))
        for cmd in victims:
            self._finish(cmd)
            head.append(trap("interrupted", 2, cmd.tag))
            if empty and cmd.kind == "listen" and cmd.emitted == 0:
                tail.append(cmd.tag.sentence(EMPTY))
            tail.append(cmd.tag.sentence(DONE))
        # The usual observed order: trap(t) -> done(cancel) -> done(t) (docs/routeros.md, Cancel).
        self.send(b"".join(head) + tw.sentence(DONE) + b"".join(tail))

    # ---- monitor-traffic ticker -------------------------------------------------------------

    def start_stream(self, stream: TickedStream) -> None:
        """First cycle right away (as the router does), then one per interval from the ticker."""
        router = self.router
        out: list[bytes] = []
        stream.emit(out, router.model.now_ms(), router.model, router.config.drop_mode)
        if out:
            self.send(b"".join(out))
        if stream.finished:  # a stream that ended by itself (a ping's count) sent its !done
            self._finish(stream)
            return
        self._schedule(stream, self.loop.time() + stream.interval)

    def _schedule(self, stream: TickedStream, due: float) -> None:
        heapq.heappush(self._heap, (due, id(stream), stream))
        if self._tick is None or due < self._tick.when():
            if self._tick is not None:
                self._tick.cancel()
            self._tick = self.loop.call_at(due, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        if self.closed:
            return
        router = self.router
        model = router.model
        now = self.loop.time()
        horizon = now + _TICK_SLACK
        now_ms = model.now_ms()
        default_mode = router.config.drop_mode
        heap = self._heap
        out: list[bytes] = []
        due_again: list[tuple[float, int, TickedStream]] = []
        while heap and heap[0][0] <= horizon:
            due, key, stream = heapq.heappop(heap)
            if stream.finished:
                continue
            if stream.deadline is not None and now >= stream.deadline:
                self._finish(stream)
                out.append(stream.tag.sentence(DONE))
                continue
            if router.stalled:
                pass
            elif self._write_paused:
                router.skipped_cycles += 1
            else:
                stream.emit(out, now_ms, model, default_mode)
                if stream.finished:
                    self._finish(stream)
                    continue
            nxt = due + stream.interval
            if nxt <= now:  # fell behind (e.g. the loop was busy): skip cycles rather than burst
                nxt = now + stream.interval
            due_again.append((nxt, key, stream))
        for item in due_again:
            heapq.heappush(heap, item)
        if out:
            self.send(b"".join(out))
        if heap:
            self._tick = self.loop.call_at(heap[0][0], self._on_tick)

    # ---- model events: listen streams and disappearing interfaces ---------------------------

    def _on_model_event(self, menu: str, item_id: str, row: Callable[[], dict[str, str]] | None) -> None:
        if self.closed:
            return
        out: list[bytes] = []
        built: dict[str, str] | None = None
        dead = attr_word(".dead", self.router.model.dead)
        for cmd in list(self.running.values()):
            if not isinstance(cmd, ListenStream) or cmd.menu != menu or cmd.finished:
                continue
            if row is None:
                out.append(cmd.tag.sentence(RE, attr_word(".id", item_id) + dead))
            else:
                if built is None:
                    built = row()
                if not cmd.query.match(built):
                    continue
                shown = apply_proplist(built, cmd.proplist)
                out.append(cmd.tag.sentence(RE, b"".join([attr_word(k, v) for k, v in shown.items()])))
            cmd.emitted += 1
        if out:
            self.send(b"".join(out))

    def interface_removed(self, item_id: str, mode: str, message: str) -> None:
        """End monitor streams on a vanished interface, per the configured drop mode."""
        if mode not in ("trap", "done"):
            return
        out: list[bytes] = []
        for cmd in list(self.running.values()):
            if isinstance(cmd, MonitorStream) and item_id in cmd.ids and not cmd.finished:
                self._finish(cmd)
                if mode == "trap":
                    out.append(trap(message, 0, cmd.tag))
                out.append(cmd.tag.sentence(DONE))
        if out:
            self.send(b"".join(out))
