"""The monitor's ping: `/ping =address=<ip> =interval=1` beside its traffic, from the router.

A tagged stream on the monitor's own shared connection (RouterHandle.stream), started
with the monitor's streaming and cancelled at its end: one more running command and
one ICMP echo a second on the router per monitor (docs/scaling.md). No thread of its
own: the monitor's loop calls `poll()` after each read of its source and during its
waits (it wakes at least every second), which starts or restarts the stream when due
and drains what arrived without blocking; the monitor publishes each reply as a
`latency` entry (tasks/message.py), along with its next sample (tasks/monitor.py).

The address: a static customer's static_ip; a PPPoE or hotspot customer's current
address from the router's active sessions, looked up when the monitor (re)opens its
source. A new address, or a new session with the same one (a reconnect), restarts the
ping; a lookup that finds no session keeps the ping on the last address, whose probes
then time out, which is what an agent should see while the line is down. The router
answers an address it cannot reach with a `status`; a trap or a failed stream backs off
and retries, and none of it touches the monitor's traffic (docs/architecture.md).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

from common.backoff import Backoff
from routeros import RouterError, Stream
from routeros.ping import PingParseError, PingReply, parse_ping_row
from tasks.hub import RouterHandle
from tasks.ping_cap import PingSlot

log = logging.getLogger(__name__)

# Loss is reported over this many probes (the "loss over the last 10").
LOSS_WINDOW = 10
# A traffic sample carries the latest answered probe's RTT only when it is this recent.
RTT_FRESH = 3.0
# The address lookup runs on the monitor's loop: short, so a stop is still seen at once.
LOOKUP_TIMEOUT = 0.5
# Replies waiting for the loop: a few seconds' worth (the loop drains every second).
STREAM_QUEUE = 16
# A ping the router refused or that failed: retried after 1-2 s, doubling up to 60 s.
RETRY_INITIAL = 2.0
RETRY_MAX = 60.0
PING_PROPLIST = ("seq", "host", "time", "status", "sent", "received", "packet-loss")
SESSION_MENUS = {"pppoe": "/ppp/active", "hotspot": "/ip/hotspot/active"}
# The field that names the login in each menu (docs/routeros.md, Sessions).
SESSION_LOGIN_FIELD = {"pppoe": "name", "hotspot": "user"}


@dataclass(frozen=True)
class Probe:
    """One probe's reply, for the monitor to publish."""

    address: str
    reply: PingReply
    loss_pct: float


class Pinger:
    """One monitor's ping. Every method runs on the monitor's loop thread."""

    def __init__(
        self,
        handle: RouterHandle,
        slot: PingSlot,
        *,
        address: str | None,
        login: str | None,
        service_type: str,
        label: str,
    ) -> None:
        self._handle = handle
        self._slot = slot
        self._static = address
        self._login = login
        self._menu = SESSION_MENUS.get(service_type) if address is None else None
        self._login_field = SESSION_LOGIN_FIELD.get(service_type, "name")
        self._label = label
        self.address: str | None = address
        self._session: str | None = None  # the router's .id of the session the address came from
        self._stream: Stream | None = None
        self._retry_at = 0.0
        self._backoff = Backoff(RETRY_INITIAL, RETRY_MAX)
        self._lookup_due = address is None
        self._lookup_at = 0.0
        self._lookup_backoff = Backoff(RETRY_INITIAL, RETRY_MAX)
        self._window: deque[bool] = deque(maxlen=LOSS_WINDOW)  # True = lost
        self._last_rtt: tuple[float, float] | None = None  # (rtt ms, when: monotonic)
        self.issued = 0  # pings issued (restarts included), for logs and tests

    # -- the monitor's hooks ----------------------------------------------------------------

    def source_opened(self) -> None:
        """The monitor (re)opened its source: look the address up again (a PPPoE or
        hotspot customer may have reconnected with another address)."""
        if self._menu is not None:
            self._lookup_due, self._lookup_at = True, 0.0

    def poll(self) -> list[Probe]:
        """Start the ping when due, renew the router cap, and take every reply that
        arrived; never blocks (beyond an address lookup that was due, LOOKUP_TIMEOUT)."""
        now = time.monotonic()
        if self._slot.due(now) and not self._slot.take():
            self._stop("router's ping cap reached")
            return []
        if not self._slot.held:
            return []
        if self._lookup_due and now >= self._lookup_at:
            self._lookup()
        if self._stream is None and self.address is not None and now >= self._retry_at:
            self._start()
        return self._drain()

    def take(self) -> list[Probe]:
        """Only the replies that arrived: no lookup, no cap renewal, no Redis, no router
        call (what the monitor calls in the way of a sample)."""
        return self._drain()

    def recent_rtt(self) -> float | None:
        """The latest answered probe's RTT (ms) if at most RTT_FRESH old, else None."""
        last = self._last_rtt
        if last is None or time.monotonic() - last[1] > RTT_FRESH:
            return None
        return last[0]

    def close(self) -> None:
        """The monitor ends: cancel the ping and give the router's place back."""
        self._stop(None)
        self._slot.release()

    # -- inside -----------------------------------------------------------------------------

    def _lookup(self) -> None:
        """The customer's current address from the router's active sessions."""
        if self._menu is None or self._login is None:
            self._lookup_due = False  # nothing to look up with: no address to ping
            return
        try:
            rows = self._handle.call(
                f"{self._menu}/print",
                queries=(f"?{self._login_field}={self._login}",),
                proplist=(".id", "address"),
                timeout=LOOKUP_TIMEOUT,
            )
        except RouterError as exc:
            # Timed out, or refused: try again on the ping's backoff (the traffic is not
            # ours to disturb: its own source says what is wrong with the router).
            self._lookup_at = time.monotonic() + self._lookup_backoff.next_delay()
            log.info("ping %s: address lookup failed: %s", self._label, exc)
            return
        if rows is None:
            return  # the connection is still logging in: the next poll asks again
        self._lookup_due = False
        self._lookup_backoff.reset()
        row = next((r for r in rows if r.get("address")), None)
        if row is None:
            return  # not online now: keep pinging the last address (its probes time out)
        address, session = row["address"].split("/")[0], row.get(".id")
        if (address, session) != (self.address, self._session):
            if self.address is not None:
                log.info(
                    "ping %s: session changed (%s -> %s): restarting", self._label, self.address, address
                )
            self._stop(None)
            self.address, self._session = address, session
            self._window.clear()
            self._retry_at = 0.0

    def _start(self) -> None:
        assert self.address is not None
        try:
            stream = self._handle.stream(
                "/ping",
                {"address": self.address, "interval": "1"},
                proplist=PING_PROPLIST,
                maxsize=STREAM_QUEUE,
                wait=0,
            )
        except RouterError as exc:
            self._failed(f"cannot issue /ping: {exc}")
            return
        if stream is not None:  # None: the connection is still logging in
            self._stream = stream
            self.issued += 1

    def _drain(self) -> list[Probe]:
        probes: list[Probe] = []
        while self._stream is not None:
            event = self._stream.get(timeout=0)
            if event is None:
                break
            if event.kind == "data":
                probe = self._probe(event.data or {})
                if probe is not None:
                    probes.append(probe)
            elif event.kind in ("trap", "done", "failed"):
                # The stream is over: a trap (the router refused this ping), an end we
                # did not ask for, or a client that failed for good (the monitor's source
                # replaces it). Retry later; the samples go on regardless.
                self._stream = None
                self._failed(f"/ping {event.kind}: {event.message or 'ended'}")
            # reconnecting / resumed: the client re-issues the ping itself.
        return probes

    def _probe(self, row: dict[str, str]) -> Probe | None:
        try:
            reply = parse_ping_row(row)
        except PingParseError as exc:
            log.warning("ping %s: unusable reply skipped: %s", self._label, exc)
            return None
        if reply.summary:
            return None
        self._backoff.reset()
        answered = reply.status is None and reply.rtt_ms is not None
        self._window.append(not answered)
        if answered:
            assert reply.rtt_ms is not None
            self._last_rtt = (reply.rtt_ms, time.monotonic())
        loss = round(100.0 * sum(self._window) / len(self._window), 2)
        return Probe(self.address or reply.host or "", reply, loss)

    def _failed(self, reason: str) -> None:
        delay = self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        log.warning("ping %s: %s; retrying in %.1fs", self._label, reason, delay)

    def _stop(self, reason: str | None) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            if reason:
                log.info("ping %s stopped: %s", self._label, reason)
            try:
                stream.cancel()
            except RouterError:
                pass
