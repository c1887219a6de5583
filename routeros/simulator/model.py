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

__all__ = ["RouterModel", "Interface", "MONITOR_FIELDS", "format_duration"]

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


def _b(value: bool) -> str:
    return "true" if value else "false"


class Interface:
    __slots__ = (
        "id",
        "name",
        "type",
        "traffic",
        "base",
        "link_up",
        "mtu",
        "mac",
        "dynamic",
        "customer",
        "fastpath",
        "_enc_sec",
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
        fresh: bool = False,
    ) -> None:
        self.id = id_
        self.name = name
        self.type = type_
        self.traffic = traffic
        # Counter offsets: a re-created interface (PPPoE reconnect) starts from zero.
        self.base = (
            (traffic.up_bytes, traffic.down_bytes, traffic.up_packets, traffic.down_packets)
            if fresh
            else (0, 0, 0, 0)
        )
        self.link_up = datetime.now().replace(microsecond=0)
        self.mtu = mtu
        self.mac = mac
        self.dynamic = dynamic
        self.customer = customer
        self.fastpath = fastpath
        self._enc_sec = -1
        self._enc_words: tuple[bytes, ...] = ()
        name_word = attr_word("name", name)
        self.zero_words = (name_word,) + tuple(attr_word(f, "0") for f in MONITOR_FIELDS[1:])

    def monitor_words(self, sec: int) -> tuple[bytes, ...]:
        """The 14 encoded monitor-traffic words for this second, shared by every stream."""
        if self._enc_sec == sec:
            return self._enc_words
        t = self.traffic
        t.advance(sec)
        rx_bps, tx_bps, rx_pps, tx_pps = t.up_bps, t.down_bps, t.up_pps, t.down_pps
        if self.fastpath:
            fp = (rx_pps * 3 // 4, rx_bps * 3 // 4, tx_pps * 3 // 4, tx_bps * 3 // 4)
        else:
            fp = (0, 0, 0, 0)
        values = (rx_pps, rx_bps, fp[0], fp[1], 0, 0, tx_pps, tx_bps, fp[2], fp[3], 0, t.queue_drops, 0)
        words = [self.zero_words[0]]
        for key, v in zip(_MONITOR_KEYS[1:], values):
            data = key + str(v).encode()
            words.append(bytes((len(data),)) + data)  # every such word is < 128 bytes
        self._enc_words = tuple(words)
        self._enc_sec = sec
        return self._enc_words

    def row(self, sec: int, v7: bool) -> dict[str, str]:
        t = self.traffic
        t.advance(sec)
        rx_b = t.up_bytes - self.base[0]
        tx_b = t.down_bytes - self.base[1]
        rx_p = t.up_packets - self.base[2]
        tx_p = t.down_packets - self.base[3]
        fmt = "%Y-%m-%d %H:%M:%S" if v7 else "%b/%d/%Y %H:%M:%S"
        row = {".id": self.id, "name": self.name}
        if not self.dynamic:
            row["default-name"] = self.name
        row.update({"type": self.type, "mtu": str(self.mtu), "actual-mtu": str(self.mtu)})
        if self.mac:
            row.update({"l2mtu": "1592", "max-l2mtu": "9796", "mac-address": self.mac})
        fp = 3 if self.fastpath else 0
        row.update(
            {
                "last-link-up-time": self.link_up.strftime(fmt) if v7 else self.link_up.strftime(fmt).lower(),
                "link-downs": "0",
                "rx-byte": str(rx_b),
                "tx-byte": str(tx_b),
                "rx-packet": str(rx_p),
                "tx-packet": str(tx_p),
                "rx-drop": "0",
                "tx-drop": "0",
                "tx-queue-drop": "0",
                "rx-error": "0",
                "tx-error": "0",
                "fp-rx-byte": str(rx_b * fp // 4),
                "fp-tx-byte": str(tx_b * fp // 4),
                "fp-rx-packet": str(rx_p * fp // 4),
                "fp-tx-packet": str(tx_p * fp // 4),
                "running": "true",
                "disabled": "false",
                "dynamic": _b(self.dynamic),
            }
        )
        return row


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
        fresh: bool,
    ) -> None:
        self.id, self.name, self.target, self.dynamic = id_, name, target, dynamic
        self.traffic, self.package, self.comment = traffic, package, comment
        self.base = (
            (traffic.up_bytes, traffic.down_bytes, traffic.up_packets, traffic.down_packets)
            if fresh
            else (0, 0, 0, 0)
        )


class _Session:
    """A /ppp/active or /ip/hotspot/active entry."""

    __slots__ = ("id", "customer", "up_since", "session_id")

    def __init__(self, id_: str, customer: Customer, up_since: float, session_id: str) -> None:
        self.id, self.customer, self.up_since, self.session_id = id_, customer, up_since, session_id


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
                self.hotspot_active[c.username] = _Session(self._next_id("ip/hotspot/active"), c, since, "")
                self._add_queue(c, dynamic=True, name=self.target_of(c), target=f"{c.address}/32")
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

    def now_sec(self) -> int:
        return int(time.monotonic() - self._t0)

    def interface_by_id(self, item_id: str) -> Interface | None:
        return next((i for i in self.interfaces.values() if i.id == item_id), None)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def _notify(self, menu: str, item_id: str, row: Callable[[], dict[str, str]] | None) -> None:
        for listener in list(self._listeners):
            listener(menu, item_id, row)

    # ---- PPPoE lifecycle (faults) ---------------------------------------------------------

    def _pppoe_up(self, c: Customer, since: float, notify: bool) -> None:
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
            fresh=notify,
        )
        self.interfaces[iface.name] = iface
        name = self.target_of(c)
        q = self._add_queue(c, dynamic=True, name=name, target=name, fresh=notify)
        self.drop_modes.pop(iface.name, None)
        if notify:
            sec = self.now_sec()
            self._notify("ppp/active", sess.id, lambda: self.ppp_row(sess))
            self._notify("interface", iface.id, lambda: iface.row(sec, self.v7))
            self._notify("queue/simple", q.id, lambda: self.queue_row(q))

    def _add_queue(
        self, c: Customer, *, dynamic: bool, name: str, target: str, fresh: bool = False
    ) -> _Queue:
        q = _Queue(
            self._next_id("queue/simple"),
            name,
            target,
            dynamic,
            self.traffic[c.username],
            c.package,
            "" if dynamic else self.wire(c.name),
            fresh,
        )
        self.queues[name] = q
        return q

    def pppoe_customer(self, username: str) -> Customer:
        c = self.by_username.get(username)
        if c is None or c.service_type != "pppoe":
            raise KeyError(f"no PPPoE customer {username!r}")
        return c

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

    def queue_row(self, q: _Queue) -> dict[str, str]:
        t = q.traffic
        t.advance(self.now_sec())
        div = 8 if self.config.queue_rate_unit == "Bps" else 1
        up_b, down_b = t.up_bytes - q.base[0], t.down_bytes - q.base[1]
        up_p, down_p = t.up_packets - q.base[2], t.down_packets - q.base[3]
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
            "rate": f"{t.up_bps // div}/{t.down_bps // div}",
            "total-rate": "0",
            "packet-rate": f"{t.up_pps}/{t.down_pps}",
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

    def rows(self, menu: str) -> list[dict[str, str]]:
        sec = self.now_sec()
        cfg = self.config
        if menu == "interface":
            return [i.row(sec, self.v7) for i in self.interfaces.values()]
        if menu == "ppp/active":
            return [self.ppp_row(s) for s in self.ppp_active.values()]
        if menu == "queue/simple":
            return [self.queue_row(q) for q in self.queues.values()]
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
            out = []
            for s in self.hotspot_active.values():
                c, t = s.customer, self.traffic[s.customer.username]
                t.advance(sec)
                out.append(
                    {
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
                        "bytes-in": str(t.up_bytes),
                        "bytes-out": str(t.down_bytes),
                        "packets-in": str(t.up_packets),
                        "packets-out": str(t.down_packets),
                        "radius": "false",
                        "blocked": "false",
                    }
                )
            return out
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
                t = self.traffic[c.username]
                t.advance(sec)
                rows.append(
                    {
                        ".id": self.hotspot_user_ids[c.username],
                        "server": "all",
                        "name": self.wire(c.username),
                        "password": c.password,
                        "profile": c.package.name,
                        "mac-address": c.mac_address,
                        "uptime": "0s",
                        "bytes-in": str(t.up_bytes),
                        "bytes-out": str(t.down_bytes),
                        "packets-in": str(t.up_packets),
                        "packets-out": str(t.down_packets),
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
