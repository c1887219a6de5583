"""The simulated router's state: interfaces, PPP/hotspot sessions, queues and their rows.

Lives entirely on the simulator's event-loop thread; the Simulator marshals fault hooks
onto that thread, so nothing here needs a lock.
"""

from __future__ import annotations

import codecs
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .config import SimulatorConfig
from .customers import PACKAGES, Customer, Package, generate_customers
from .traffic import Traffic
from .words import attr_word

__all__ = ["RouterModel", "Interface", "MONITOR_FIELDS", "format_duration", "format_rtt"]

# Exact API field names of /interface/monitor-traffic, in the router's order.
MONITOR_FIELDS = (
    "name",
    "rx-packets-per-second",
    "rx-bits-per-second",
    "fp-rx-packets-per-second",
    "fp-rx-bits-per-second",
    "rx-drops-per-second",
    "rx-errors-per-second",
    "tx-packets-per-second",
    "tx-bits-per-second",
    "fp-tx-packets-per-second",
    "fp-tx-bits-per-second",
    "tx-drops-per-second",
    "tx-queue-drops-per-second",
    "tx-errors-per-second",
)
_MONITOR_KEYS = tuple(("=" + f + "=").encode() for f in MONITOR_FIELDS)

# Listener signature: (menu, item_id, row builder or None when the item was removed).
Listener = Callable[[str, str, "Callable[[], dict[str, str]] | None"], None]


def format_duration(seconds: float) -> str:
    """RouterOS duration style: 3w4d12h23m12s."""
    s = max(0, int(seconds))
    out = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            out.append(f"{s // size}{unit}")
            s %= size
    if s or not out:
        out.append(f"{s}s")
    return "".join(out)


def format_rtt(ms: float, v7: bool) -> str:
    """A ping time as routers write it (docs/routeros.md, Ping): v7 "9ms562us" / "10ms" /
    "473us"; before v7 whole milliseconds, "10ms"."""
    if not v7:
        return f"{round(ms)}ms"
    whole, us = divmod(round(ms * 1000), 1000)
    if not us:
        return f"{whole}ms"
    return f"{whole}ms{us}us" if whole else f"{us}us"


# Ping model (docs/routeros.md, Ping): a quiet line answers in a few ms; a line held at its
# plan queues in the router's buffers (bufferbloat) and adds up to this much, growing with
# the square of utilisation above _BLOAT_FROM.
_BLOAT_FROM = 0.6
_BLOAT_MS = 180.0


def _b(value: bool) -> str:
    return "true" if value else "false"


class Interface:
    __slots__ = (
        "id",
        "name",
        "type",
        "traffic",
        "base",
        "mtu",
        "mac",
        "dynamic",
        "customer",
        "fastpath",
        "_head",
        "_enc_ms",
        "_enc_words",
        "zero_words",
    )

    def __init__(
        self,
        id_: str,
        name: str,
        type_: str,
        traffic: Traffic,
        *,
        mtu: int,
        mac: str | None,
        dynamic: bool,
        customer: Customer | None,
        fastpath: bool,
        v7: bool,
        since_ms: int | None = None,
    ) -> None:
        self.id = id_
        self.name = name
        self.type = type_
        self.traffic = traffic
        # Counter offsets: an interface created while the simulator runs (a PPPoE
        # reconnect) counts from zero; the ones there at start carry earlier traffic.
        self.base = traffic.counters(since_ms) if since_ms is not None else (0, 0, 0, 0)
        self.mtu = mtu
        self.mac = mac
        self.dynamic = dynamic
        self.customer = customer
        self.fastpath = fastpath
        self._enc_ms = -1
        self._enc_words: tuple[bytes, ...] = ()
        name_word = attr_word("name", name)
        self.zero_words = (name_word,) + tuple(attr_word(f, "0") for f in MONITOR_FIELDS[1:])
        # The attributes before the counters never change: built once, copied per print.
        link_up = datetime.now().replace(microsecond=0)
        head = {".id": id_, "name": name}
        if not dynamic:
            head["default-name"] = name
        head.update({"type": type_, "mtu": str(mtu), "actual-mtu": str(mtu)})
        if mac:
            head.update({"l2mtu": "1592", "max-l2mtu": "9796", "mac-address": mac})
        # v7 writes dates ISO-like, v6 as jan/03/2019 (docs/routeros.md, Router-wide tables)
        up_text = link_up.strftime("%Y-%m-%d %H:%M:%S" if v7 else "%b/%d/%Y %H:%M:%S").lower()
        head.update({"last-link-up-time": up_text, "link-downs": "0"})
        self._head = head

    def rates(self, ms: int) -> tuple[int, int, int, int]:
        """What monitor-traffic reports at ``ms``: (rx bit/s, tx bit/s, rx packet/s, tx packet/s).

        rx is what the router receives from the customer (upload), tx what it sends
        (download): docs/routeros.md, Directions.
        """
        return self.traffic.rates(ms)

    def counters(self, ms: int) -> tuple[int, int, int, int]:
        """(rx-byte, tx-byte, rx-packet, tx-packet) at ``ms``, since this interface was created."""
        up_bits, down_bits, up_p, down_p = self.traffic.counters(ms)
        b = self.base
        return (up_bits - b[0]) // 8, (down_bits - b[1]) // 8, up_p - b[2], down_p - b[3]

    def monitor_words(self, ms: int) -> tuple[bytes, ...]:
        """The 14 encoded monitor-traffic words at ``ms``, shared by every stream of that tick."""
        if self._enc_ms == ms:
            return self._enc_words
        rx_bps, tx_bps, rx_pps, tx_pps = self.traffic.rates(ms)
        if self.fastpath:
            fp = (rx_pps * 3 // 4, rx_bps * 3 // 4, tx_pps * 3 // 4, tx_bps * 3 // 4)
        else:
            fp = (0, 0, 0, 0)
        drops = self.traffic.queue_drops
        values = (rx_pps, rx_bps, fp[0], fp[1], 0, 0, tx_pps, tx_bps, fp[2], fp[3], 0, drops, 0)
        words = [self.zero_words[0]]
        for key, v in zip(_MONITOR_KEYS[1:], values):
            data = key + str(v).encode()
            words.append(bytes((len(data),)) + data)  # every such word is < 128 bytes
        self._enc_words = tuple(words)
        self._enc_ms = ms
        return self._enc_words

    def row(self, ms: int) -> dict[str, str]:
        rx_b, tx_b, rx_p, tx_p = self.counters(ms)
        fp = 3 if self.fastpath else 0
        row = self._head.copy()
        row["rx-byte"] = str(rx_b)
        row["tx-byte"] = str(tx_b)
        row["rx-packet"] = str(rx_p)
        row["tx-packet"] = str(tx_p)
        row.update(_IFACE_ERRORS)
        row["fp-rx-byte"] = str(rx_b * fp // 4)
        row["fp-tx-byte"] = str(tx_b * fp // 4)
        row["fp-rx-packet"] = str(rx_p * fp // 4)
        row["fp-tx-packet"] = str(tx_p * fp // 4)
        row["running"] = "true"
        row["disabled"] = "false"
        row["dynamic"] = _b(self.dynamic)
        return row


_IFACE_ERRORS = {"rx-drop": "0", "tx-drop": "0", "tx-queue-drop": "0", "rx-error": "0", "tx-error": "0"}


class _Queue:
    __slots__ = ("id", "name", "target", "dynamic", "traffic", "base", "package", "comment")

    def __init__(
        self,
        id_: str,
        name: str,
        target: str,
        dynamic: bool,
        traffic: Traffic,
        package: Package,
        comment: str,
        since_ms: int | None,
    ) -> None:
        self.id, self.name, self.target, self.dynamic = id_, name, target, dynamic
        self.traffic, self.package, self.comment = traffic, package, comment
        # A dynamic queue made for a new session counts from zero, like its interface.
        self.base = traffic.counters(since_ms) if since_ms is not None else (0, 0, 0, 0)


class _Session:
    """A /ppp/active or /ip/hotspot/active entry."""

    __slots__ = ("id", "customer", "up_since", "session_id", "base")

    def __init__(
        self,
        id_: str,
        customer: Customer,
        up_since: float,
        session_id: str,
        base: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> None:
        self.id, self.customer, self.up_since, self.session_id = id_, customer, up_since, session_id
        self.base = base  # the customer's traffic counters at login (hotspot bytes-in/out)


class RouterModel:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.v7 = config.version_tuple >= (7, 0, 0)
        self._t0 = time.monotonic()
        self._ids: dict[str, int] = {}
        self._listeners: set[Listener] = set()
        self._utf8 = codecs.lookup(config.text_encoding).name == "utf-8"
        self.customers: list[Customer] = generate_customers(
            config.seed, config.pppoe, config.hotspot, config.static, config.pppoe_names
        )
        self.by_username: dict[str, Customer] = {c.username: c for c in self.customers}
        self.by_address: dict[str, Customer] = {c.address: c for c in self.customers}
        rng_ping = random.Random(f"ping-{config.seed}")
        self.ping_base_ms: dict[str, float] = {c.username: rng_ping.uniform(2.0, 9.0) for c in self.customers}
        self._ping_rng = random.Random(f"ping-jitter-{config.seed}")
        self.traffic: dict[str, Traffic] = {}
        self.interfaces: dict[str, Interface] = {}
        self.ppp_active: dict[str, _Session] = {}
        self.hotspot_active: dict[str, _Session] = {}
        self.queues: dict[str, _Queue] = {}
        self.secret_ids = {
            c.username: self._next_id("ppp/secret") for c in self.customers if c.service_type == "pppoe"
        }
        self.hotspot_user_ids = {
            c.username: self._next_id("ip/hotspot/user")
            for c in self.customers
            if c.service_type == "hotspot"
        }
        self.drop_modes: dict[str, str] = {}  # interface name -> mode, while a PPPoE session is down
        # interface name -> (index in MONITOR_FIELDS, encoded word) for its next
        # monitor-traffic rows, one each (Simulator.inject_monitor_values)
        self.injected: dict[str, deque[tuple[int, bytes]]] = {}
        self._session_seq = 0x81C00000

        for i, name in enumerate(("ether1", "ether2", "ether3", "ether4", "sfp-sfpplus1")):
            tr = Traffic(config.seed * 7919 + 100_000 + i, 1_000_000_000, 1_000_000_000)
            mac = f"48:A9:8A:{config.seed % 256:02X}:10:{i + 1:02X}"
            self.interfaces[name] = Interface(
                self._next_id("interface"),
                name,
                "ether",
                tr,
                mtu=1500,
                mac=mac,
                dynamic=False,
                customer=None,
                fastpath=True,
                v7=self.v7,
            )
        tr = Traffic(config.seed * 7919 + 100_100, 1_000_000_000, 1_000_000_000)
        self.interfaces["bridge-lan"] = Interface(
            self._next_id("interface"),
            "bridge-lan",
            "bridge",
            tr,
            mtu=1500,
            mac=f"48:A9:8A:{config.seed % 256:02X}:20:01",
            dynamic=False,
            customer=None,
            fastpath=True,
            v7=self.v7,
        )
        rng_uptime = random.Random(f"uptime-{config.seed}")
        for c in self.customers:
            self.traffic[c.username] = Traffic(
                config.seed * 1_000_003 + c.index, c.package.download_bps, c.package.upload_bps
            )
            since = self._t0 - rng_uptime.randint(60, 30 * 86400)
            if c.service_type == "pppoe":
                self._pppoe_up(c, since, notify=False)
            elif c.service_type == "hotspot":
                self._hotspot_up(c, since, notify=False)
            else:
                self._add_queue(c, dynamic=False, name=self.target_of(c), target=f"{c.address}/32")

    # ---- ids, time, listeners -------------------------------------------------------------

    def _next_id(self, menu: str) -> str:
        n = self._ids.get(menu, 0) + 1
        self._ids[menu] = n
        return f"*{n:X}"

    def wire(self, text: str) -> str:
        """`text` as this router holds it. Every word reaches the wire through the codec's
        UTF-8 with surrogateescape, so a code-page router's bytes are kept as the str that
        encodes back to exactly them; a client's word decodes to that same str only when
        it sent the same bytes (docs/routeros.md, Encodings)."""
        if self._utf8:
            return text
        return text.encode(self.config.text_encoding).decode("utf-8", "surrogateescape")

    def target_of(self, c: Customer) -> str:
        """The customer's interface or queue name, as the router holds it."""
        return self.wire(c.target)

    def now_ms(self) -> int:
        """Simulated time in whole milliseconds: what every counter and rate is read at."""
        return int((time.monotonic() - self._t0) * 1000)

    @property
    def dead(self) -> str:
        """The value of `.dead` in a listen's removal row: `yes` before v7, `true` from it
        (docs/routeros.md, Router-wide tables)."""
        return "true" if self.v7 else "yes"

    def interface_by_id(self, item_id: str) -> Interface | None:
        return next((i for i in self.interfaces.values() if i.id == item_id), None)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def _notify(self, menu: str, item_id: str, row: Callable[[], dict[str, str]] | None) -> None:
        for listener in list(self._listeners):
            listener(menu, item_id, row)

    # ---- session lifecycle (faults) --------------------------------------------------------
    # A session that ends takes its dynamic interface and queue with it; one that starts
    # gets new ones, with new .id values and counters from zero. Every listen sees the
    # same change the monitors see.

    def _pppoe_up(self, c: Customer, since: float, notify: bool) -> None:
        now = self.now_ms() if notify else None
        self._session_seq += 1
        sess = _Session(self._next_id("ppp/active"), c, since, f"0x{self._session_seq:08X}")
        self.ppp_active[c.username] = sess
        iface = Interface(
            self._next_id("interface"),
            self.target_of(c),
            "pppoe-in",
            self.traffic[c.username],
            mtu=1480,
            mac=None,
            dynamic=True,
            customer=c,
            fastpath=False,
            v7=self.v7,
            since_ms=now,
        )
        self.interfaces[iface.name] = iface
        name = self.target_of(c)
        q = self._add_queue(c, dynamic=True, name=name, target=name, since_ms=now)
        self.drop_modes.pop(iface.name, None)
        if now is not None:
            self._notify("ppp/active", sess.id, lambda: self.ppp_row(sess))
            self._notify("interface", iface.id, lambda: iface.row(now))
            self._notify("queue/simple", q.id, lambda: self.queue_row(q))

    def _hotspot_up(self, c: Customer, since: float, notify: bool) -> None:
        now = self.now_ms() if notify else None
        base = self.traffic[c.username].counters(now) if now is not None else (0, 0, 0, 0)
        sess = _Session(self._next_id("ip/hotspot/active"), c, since, "", base)
        self.hotspot_active[c.username] = sess
        q = self._add_queue(c, dynamic=True, name=self.target_of(c), target=f"{c.address}/32", since_ms=now)
        if now is not None:
            self._notify("ip/hotspot/active", sess.id, lambda: self.hotspot_row(sess, self.now_ms()))
            self._notify("queue/simple", q.id, lambda: self.queue_row(q))

    def _add_queue(
        self, c: Customer, *, dynamic: bool, name: str, target: str, since_ms: int | None = None
    ) -> _Queue:
        q = _Queue(
            self._next_id("queue/simple"),
            name,
            target,
            dynamic,
            self.traffic[c.username],
            c.package,
            "" if dynamic else self.wire(c.name),
            since_ms,
        )
        self.queues[name] = q
        return q

    def _customer(self, username: str, service_type: str) -> Customer:
        c = self.by_username.get(username)
        if c is None or c.service_type != service_type:
            label = {"pppoe": "PPPoE", "hotspot": "hotspot"}[service_type]
            raise KeyError(f"no {label} customer {username!r}")
        return c

    def pppoe_customer(self, username: str) -> Customer:
        return self._customer(username, "pppoe")

    def inject(self, name: str, field: str, values: tuple[str, ...]) -> None:
        """Queue ``values`` of ``field`` for the next monitor-traffic rows of interface ``name``."""
        if name not in self.interfaces:
            raise ValueError(f"no interface {name!r}")
        index = MONITOR_FIELDS.index(field)
        self.injected.setdefault(name, deque()).extend((index, attr_word(field, v)) for v in values)

    def with_injected(self, name: str, words: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """This row of interface ``name``: its words, with the next injected value in place
        if one is queued (the shared per-second words are left as they are)."""
        pending = self.injected.get(name)
        if not pending:
            return words
        index, word = pending.popleft()
        if not pending:
            del self.injected[name]
        return words[:index] + (word,) + words[index + 1 :]

    def online(self, c: Customer) -> bool:
        """The customer holds its address now: always for static IP, while logged in otherwise."""
        if c.service_type == "pppoe":
            return c.username in self.ppp_active
        if c.service_type == "hotspot":
            return c.username in self.hotspot_active
        return True

    def probe(self, address: str, ms: int) -> tuple[float | None, str | None]:
        """One ICMP echo from the router to ``address`` at ``ms``: (rtt ms, None) when
        answered, else (None, the router's status words)."""
        c = self.by_address.get(address)
        if c is None:
            return None, "host unreachable"
        if not self.online(c):
            return None, "timeout"
        up_bps, down_bps, _, _ = self.traffic[c.username].rates(ms)
        utilisation = max(down_bps / c.package.download_bps, up_bps / c.package.upload_bps)
        over = max(0.0, (min(utilisation, 1.0) - _BLOAT_FROM) / (1.0 - _BLOAT_FROM))
        bloat = _BLOAT_MS * over * over
        jitter = self._ping_rng.uniform(0.0, 1.0 + 0.2 * bloat)
        return self.ping_base_ms[c.username] + bloat + jitter, None

    def saturate(self, username: str, fraction: float | None, seconds: float | None) -> None:
        """Drive the customer's download to ``fraction`` of its plan from the next second,
        for ``seconds`` (None: until called with fraction None)."""
        if username not in self.by_username:
            raise KeyError(f"no customer {username!r}")
        traffic = self.traffic[username]
        sec = self.now_ms() // 1000
        traffic.advance(sec)
        until = None if fraction is None or seconds is None else sec + 1 + max(1, round(seconds))
        traffic.saturate(fraction, until)

    def drop_pppoe(self, username: str, mode: str) -> str:
        """Remove the session, its <pppoe-…> interface and dynamic queue; returns the interface name."""
        c = self.pppoe_customer(username)
        sess = self.ppp_active.pop(username, None)
        name = self.target_of(c)
        if sess is None:
            return name
        iface = self.interfaces.pop(name)
        q = self.queues.pop(name, None)
        self.drop_modes[name] = mode
        self._notify("ppp/active", sess.id, None)
        self._notify("interface", iface.id, None)
        if q is not None:
            self._notify("queue/simple", q.id, None)
        return name

    def restore_pppoe(self, username: str) -> None:
        """The customer dials in again: a new session and interface object, counters from zero."""
        c = self.pppoe_customer(username)
        if username in self.ppp_active:
            return
        self._pppoe_up(c, time.monotonic(), notify=True)

    def drop_hotspot(self, username: str) -> None:
        """The hotspot user logs out: the /ip/hotspot/active entry and its dynamic queue vanish."""
        c = self._customer(username, "hotspot")
        sess = self.hotspot_active.pop(username, None)
        if sess is None:
            return
        q = self.queues.pop(self.target_of(c), None)
        self._notify("ip/hotspot/active", sess.id, None)
        if q is not None:
            self._notify("queue/simple", q.id, None)

    def restore_hotspot(self, username: str) -> None:
        """The hotspot user logs in again: a new entry and queue, counters from zero."""
        c = self._customer(username, "hotspot")
        if username in self.hotspot_active:
            return
        self._hotspot_up(c, time.monotonic(), notify=True)

    # ---- rows -----------------------------------------------------------------------------

    def ppp_row(self, s: _Session) -> dict[str, str]:
        c = s.customer
        return {
            ".id": s.id,
            "name": self.wire(c.username),
            "service": "pppoe",
            "caller-id": c.mac_address,
            "address": c.address,
            "uptime": format_duration(time.monotonic() - s.up_since),
            "encoding": "",
            "session-id": s.session_id,
            "limit-bytes-in": "0",
            "limit-bytes-out": "0",
            "radius": "false",
        }

    def queue_row(self, q: _Queue, ms: int | None = None) -> dict[str, str]:
        """A simple queue: pairs are target upload/download (docs/routeros.md, Directions);
        `bytes` grows by what `rate` says, as the interface counters do."""
        t = q.traffic
        now = self.now_ms() if ms is None else ms
        up_bits, down_bits, up_p, down_p = t.counters(now)
        up_b, down_b = (up_bits - q.base[0]) // 8, (down_bits - q.base[1]) // 8
        up_p, down_p = up_p - q.base[2], down_p - q.base[3]
        up_bps, down_bps, up_pps, down_pps = t.rates(now)
        div = 8 if self.config.queue_rate_unit == "Bps" else 1
        p = q.package
        row = {
            ".id": q.id,
            "name": q.name,
            "target": q.target,
            "parent": "none",
            "packet-marks": "",
            "priority": "8/8",
            "queue": "default-small/default-small",
            "limit-at": "0/0",
            "max-limit": f"{p.upload_bps}/{p.download_bps}",
            "burst-limit": "0/0",
            "burst-threshold": "0/0",
            "burst-time": "0s/0s",
            "bucket-size": "0.1/0.1",
            "bytes": f"{up_b}/{down_b}",
            "total-bytes": "0",
            "packets": f"{up_p}/{down_p}",
            "total-packets": "0",
            "dropped": f"0/{t.queue_drops}",
            "total-dropped": "0",
            "rate": f"{up_bps // div}/{down_bps // div}",
            "total-rate": "0",
            "packet-rate": f"{up_pps}/{down_pps}",
            "total-packet-rate": "0",
            "queued-packets": "0/0",
            "total-queued-packets": "0",
            "queued-bytes": "0/0",
            "total-queued-bytes": "0",
            "invalid": "false",
            "dynamic": _b(q.dynamic),
            "disabled": "false",
        }
        if q.comment:
            row["comment"] = q.comment
        return row

    def hotspot_row(self, s: _Session, ms: int) -> dict[str, str]:
        c = s.customer
        up_bits, down_bits, up_p, down_p = self.traffic[c.username].counters(ms)
        b = s.base
        return {
            ".id": s.id,
            "server": "hotspot1",
            "user": self.wire(c.username),
            "domain": "",
            "address": c.address,
            "mac-address": c.mac_address,
            "login-by": "http-chap",
            "uptime": format_duration(time.monotonic() - s.up_since),
            "idle-time": "0s",
            "idle-timeout": "5m",
            "keepalive-timeout": "2m",
            # in = received from the client (upload), out = sent to it (download)
            "bytes-in": str((up_bits - b[0]) // 8),
            "bytes-out": str((down_bits - b[1]) // 8),
            "packets-in": str(up_p - b[2]),
            "packets-out": str(down_p - b[3]),
            "radius": "false",
            "blocked": "false",
        }

    def rows(self, menu: str, ms: int | None = None) -> list[dict[str, str]]:
        """A menu's rows at time ``ms`` (now by default)."""
        now = self.now_ms() if ms is None else ms
        cfg = self.config
        if menu == "interface":
            return [i.row(now) for i in self.interfaces.values()]
        if menu == "ppp/active":
            return [self.ppp_row(s) for s in self.ppp_active.values()]
        if menu == "queue/simple":
            return [self.queue_row(q, now) for q in self.queues.values()]
        if menu == "ppp/secret":
            return [
                {
                    ".id": self.secret_ids[c.username],
                    "name": self.wire(c.username),
                    "service": "pppoe",
                    "caller-id": "",
                    "password": c.password,
                    "profile": c.package.name,
                    "routes": "",
                    "limit-bytes-in": "0",
                    "limit-bytes-out": "0",
                    "remote-address": c.address,
                    "disabled": "false",
                    "last-logged-out": "1970-01-01 00:00:00" if self.v7 else "jan/01/1970 00:00:00",
                    "comment": self.wire(c.name),
                }
                for c in self.customers
                if c.service_type == "pppoe"
            ]
        if menu == "ppp/profile":
            rows = [
                {
                    ".id": "*0",
                    "name": "default",
                    "use-mpls": "default",
                    "use-compression": "default",
                    "use-encryption": "default",
                    "only-one": "default",
                    "change-tcp-mss": "yes",
                    "default": "true",
                },
            ]
            for i, p in enumerate(PACKAGES, start=1):
                rows.append(
                    {
                        ".id": f"*{i:X}",
                        "name": p.name,
                        "local-address": "10.64.0.1",
                        "remote-address": "pppoe-pool",
                        "rate-limit": p.rate_limit,
                        "use-mpls": "default",
                        "use-compression": "default",
                        "use-encryption": "default",
                        "only-one": "yes",
                        "change-tcp-mss": "default",
                        "default": "false",
                    }
                )
            rows.append(
                {
                    ".id": "*FFFFFFFE",
                    "name": "default-encryption",
                    "use-mpls": "default",
                    "use-compression": "default",
                    "use-encryption": "yes",
                    "only-one": "default",
                    "change-tcp-mss": "yes",
                    "default": "true",
                }
            )
            return rows
        if menu == "ip/hotspot/active":
            return [self.hotspot_row(s, now) for s in self.hotspot_active.values()]
        if menu == "ip/hotspot/user":
            rows = [
                {
                    ".id": "*0",
                    "server": "all",
                    "name": "default-trial",
                    "profile": "default",
                    "uptime": "0s",
                    "bytes-in": "0",
                    "bytes-out": "0",
                    "packets-in": "0",
                    "packets-out": "0",
                    "dynamic": "false",
                    "disabled": "false",
                    "default": "true",
                }
            ]
            for c in self.customers:
                if c.service_type != "hotspot":
                    continue
                up_bits, down_bits, up_p, down_p = self.traffic[c.username].counters(now)
                rows.append(
                    {
                        ".id": self.hotspot_user_ids[c.username],
                        "server": "all",
                        "name": self.wire(c.username),
                        "password": c.password,
                        "profile": c.package.name,
                        "mac-address": c.mac_address,
                        "uptime": "0s",
                        "bytes-in": str(up_bits // 8),
                        "bytes-out": str(down_bits // 8),
                        "packets-in": str(up_p),
                        "packets-out": str(down_p),
                        "dynamic": "false",
                        "disabled": "false",
                        "default": "false",
                        "comment": self.wire(c.name),
                    }
                )
            return rows
        if menu == "ip/hotspot/user/profile":
            rows = [
                {
                    ".id": "*0",
                    "name": "default",
                    "idle-timeout": "none",
                    "keepalive-timeout": "2m",
                    "status-autorefresh": "1m",
                    "shared-users": "1",
                    "add-mac-cookie": "true",
                    "mac-cookie-timeout": "3d",
                    "address-list": "",
                    "transparent-proxy": "false",
                    "default": "true",
                }
            ]
            for i, p in enumerate(PACKAGES, start=1):
                rows.append(
                    {
                        ".id": f"*{i:X}",
                        "name": p.name,
                        "idle-timeout": "none",
                        "keepalive-timeout": "2m",
                        "status-autorefresh": "1m",
                        "shared-users": "1",
                        "rate-limit": p.rate_limit,
                        "add-mac-cookie": "true",
                        "mac-cookie-timeout": "3d",
                        "address-list": "",
                        "transparent-proxy": "false",
                        "default": "false",
                    }
                )
            return rows
        if menu == "system/identity":
            return [{"name": cfg.identity}]
        if menu == "system/resource":
            v = cfg.version
            return [
                {
                    "uptime": format_duration(time.monotonic() - self._t0 + 86400 * 12),
                    "version": f"{v} (stable)",
                    "build-time": "2026-10-01 09:12:44" if self.v7 else "oct/01/2026 09:12:44",
                    "factory-software": "7.1" if self.v7 else "6.40",
                    "free-memory": "3221225472",
                    "total-memory": "4294967296",
                    "cpu": "ARM64",
                    "cpu-count": "4",
                    "cpu-frequency": "1700",
                    "cpu-load": "7",
                    "free-hdd-space": "97517568",
                    "total-hdd-space": "134217728",
                    "write-sect-since-reboot": "4213",
                    "write-sect-total": "912331",
                    "architecture-name": "arm64",
                    "board-name": "CCR2004-1G-12S+2XS",
                    "platform": "MikroTik",
                }
            ]
        raise KeyError(menu)

    def customers_json(self, host: str, port: int, ssl_port: int | None) -> dict[str, Any]:
        return {
            "router": {
                "identity": self.config.identity,
                "host": host,
                "port": port,
                "ssl_port": ssl_port,
                "version": self.config.version,
            },
            "packages": [p.to_json() for p in PACKAGES],
            "customers": [c.to_json() for c in self.customers],
        }
