"""The served menu tree and the print / listen / monitor-traffic commands."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from .model import MONITOR_FIELDS, Interface, RouterModel, format_rtt
from .query import Query, QueryError, apply_proplist
from .words import DONE, EMPTY, RE, Tag, attr_word, reply, trap

if TYPE_CHECKING:
    from .session import ApiSession

__all__ = [
    "Command",
    "TickedStream",
    "MonitorStream",
    "PingStream",
    "PrintStream",
    "ListenStream",
    "resolve",
    "UnknownCommand",
    "command_key",
    "run_command",
]

# Menus we serve and their commands (getall is the API alias of print).
_COMMON = frozenset({"print", "getall", "listen"})
MENUS: dict[str, frozenset[str]] = {
    "interface": _COMMON | {"monitor-traffic"},
    "ppp/active": _COMMON,
    "ppp/secret": _COMMON,
    "ppp/profile": _COMMON,
    "ip/hotspot/active": _COMMON,
    "ip/hotspot/user": _COMMON,
    "ip/hotspot/user/profile": _COMMON,
    "queue/simple": _COMMON,
    "": frozenset({"ping"}),  # /ping sits at the top of the tree
    "system/identity": frozenset({"print", "getall"}),
    "system/resource": frozenset({"print", "getall"}),
    "ip/service": frozenset({"print", "getall"}),
    "user/active": frozenset({"print", "getall"}),
}
# Directories that exist on the router without being menus we serve, so that the
# "no such command or directory (x)" text names the same segment a router would.
_DIRS = frozenset({"ip", "ppp", "queue", "system", "ip/hotspot", "user"}) | frozenset(MENUS)

_MONITOR_INDEX = {name: i for i, name in enumerate(MONITOR_FIELDS)}
_INTERVAL_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}
_PING_INTERVAL = 1.0  # /ping without =interval= (docs/routeros.md, Ping)


class UnknownCommand(Exception):
    def __init__(self, segment: str) -> None:
        super().__init__(segment)
        self.segment = segment


def resolve(command: str) -> tuple[str, str]:
    """'/interface/monitor-traffic' -> ('interface', 'monitor-traffic'); UnknownCommand names the bad part."""
    parts = [p for p in command.strip("/").split("/")]
    if not parts or parts == [""]:
        raise UnknownCommand(command)
    for i, seg in enumerate(parts):
        prefix = "/".join(parts[: i + 1])
        if prefix in _DIRS and i < len(parts) - 1:
            continue
        menu = "/".join(parts[:i])
        if i == len(parts) - 1 and seg in MENUS.get(menu, ()):
            return menu, seg
        raise UnknownCommand(seg)
    raise UnknownCommand(parts[-1])


def command_key(command: str) -> tuple[str, str]:
    """(menu, verb) of a served command, getall read as print; ValueError for anything else.

    Used to match SimulatorConfig.denied_commands against what a client sends.
    """
    try:
        menu, verb = resolve(command)
    except UnknownCommand:
        raise ValueError(f"not a command the simulator serves: {command!r}") from None
    return menu, "print" if verb == "getall" else verb


def parse_interval(text: str) -> float:
    """RouterOS time values: '1', '1s', '500ms', '00:00:01'."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(text)
        h, m, s = parts
        return int(h) * 3600 + int(m) * 60 + float(s)
    m_ = _INTERVAL_RE.match(text)
    if not m_:
        raise ValueError(text)
    return float(m_.group(1)) * _UNIT[m_.group(2)]


def _is_set(attrs: dict[str, str], name: str) -> bool:
    # `=once`, `=once=` and `=once=yes` all mean on; only an explicit no/false means off.
    return name in attrs and attrs[name] not in ("no", "false")


def _proplist(attrs: dict[str, str]) -> list[str] | None:
    if ".proplist" not in attrs:
        return None
    return [p for p in attrs[".proplist"].split(",") if p]


def _row_sentence(row: dict[str, str], tag: Tag) -> bytes:
    return tag.sentence(RE, b"".join([attr_word(k, v) for k, v in row.items()]))


class Command:
    """A long-running command registered on its session until it ends."""

    kind = "command"

    def __init__(self, session: ApiSession, tag: Tag) -> None:
        self.session = session
        self.tag = tag
        self.finished = False
        self.emitted = 0
        self.key = 0  # set by the session when registered

    def stop(self) -> None:
        self.finished = True


class TickedStream(Command):
    """A command that produces output every interval, driven by its session's ticker."""

    interval: float
    deadline: float | None = None

    def emit(self, out: list[bytes], now: int, model: RouterModel, default_drop_mode: str) -> None:
        raise NotImplementedError


class MonitorStream(TickedStream):
    kind = "monitor"

    def __init__(
        self,
        session: ApiSession,
        tag: Tag,
        ifaces: list[Interface],
        interval: float,
        fields: list[int] | None,
        deadline: float | None,
    ) -> None:
        super().__init__(session, tag)
        self.names = [i.name for i in ifaces]
        self.ids = {i.id for i in ifaces}
        self.interval = interval
        self.fields = fields
        self.section = 0
        self.deadline = deadline
        self.zero = {i.name: i.zero_words for i in ifaces}

    def emit(self, out: list[bytes], now: int, model: RouterModel, default_drop_mode: str) -> None:
        """Append this cycle's `!re` sentences (one per interface) to out."""
        interfaces, drop_modes, injected = model.interfaces, model.drop_modes, model.injected
        data = b"=.section=" + str(self.section).encode()
        head = RE + self.tag.head
        tail = bytes((len(data),)) + data + self.tag.tail
        fields = self.fields
        sent = False
        for name in self.names:
            iface = interfaces.get(name)
            if iface is not None:
                words = iface.monitor_words(now)
                if name in injected:
                    words = model.with_injected(name, words)
            elif drop_modes.get(name, default_drop_mode) == "zeros":
                words = self.zero[name]
            else:  # "stall" (trap/done streams were ended when the interface went away)
                continue
            body = b"".join(words) if fields is None else b"".join([words[i] for i in fields])
            out.append(head + body + tail)
            sent = True
        if sent:
            self.section += 1
            self.emitted += 1


class PrintStream(TickedStream):
    """`print =interval=N`: every cycle re-prints the menu under one `.section`, then `!done`.

    The per-cycle `!done` while the command keeps running is what MikroDash reports from 7.24
    (docs/routeros.md, Long-running commands; not documented by MikroTik).
    """

    kind = "print"

    def __init__(
        self,
        session: ApiSession,
        tag: Tag,
        menu: str,
        query: Query,
        proplist: list[str] | None,
        interval: float,
    ) -> None:
        super().__init__(session, tag)
        self.menu = menu
        self.query = query
        self.proplist = proplist
        self.interval = interval
        self.section = 0

    def emit(self, out: list[bytes], now: int, model: RouterModel, default_drop_mode: str) -> None:
        section = attr_word(".section", str(self.section))
        tag = self.tag
        for row in self.session.router.table(self.menu, now):
            if self.query.match(row):
                shown = apply_proplist(row, self.proplist)
                out.append(tag.sentence(RE, b"".join([attr_word(k, v) for k, v in shown.items()]) + section))
        out.append(tag.sentence(DONE))
        self.section += 1
        self.emitted += 1


class PingStream(TickedStream):
    """`/ping`: one `!re` per probe with the running totals (docs/routeros.md, Ping).

    Without `count` (or with 0) it never ends by itself: only /cancel stops it. With
    `count` it sends `!done` after the last probe (a totals-only summary row before it
    when SimulatorConfig.ping_summary_row is on).
    """

    kind = "ping"

    def __init__(
        self, session: ApiSession, tag: Tag, address: str, interval: float, count: int | None
    ) -> None:
        super().__init__(session, tag)
        self.address = address
        self.interval = interval
        self.count = count
        self.sent = 0
        self.received = 0
        self.rtts: list[float] = []

    def emit(self, out: list[bytes], now: int, model: RouterModel, default_drop_mode: str) -> None:
        rtt, status = model.probe(self.address, now)
        row = {"seq": str(self.sent), "host": self.address}
        self.sent += 1
        if rtt is None:
            row["status"] = status or "timeout"
        else:
            self.received += 1
            self.rtts.append(rtt)
            row.update(size="56", ttl="64", time=format_rtt(rtt, model.v7))
        totals = self._totals(model.v7)
        row.update(totals)
        out.append(_row_sentence(row, self.tag))
        self.emitted += 1
        if self.count is not None and self.sent >= self.count:
            if self.session.router.config.ping_summary_row:
                out.append(_row_sentence(totals, self.tag))
            out.append(self.tag.sentence(DONE))
            self.finished = True  # the session unregisters it

    def _totals(self, v7: bool) -> dict[str, str]:
        sent, received = self.sent, self.received
        totals = {
            "sent": str(sent),
            "received": str(received),
            "packet-loss": str((sent - received) * 100 // sent),
        }
        if self.rtts:
            rtts = self.rtts
            totals["min-rtt"] = format_rtt(min(rtts), v7)
            totals["avg-rtt"] = format_rtt(sum(rtts) / len(rtts), v7)
            totals["max-rtt"] = format_rtt(max(rtts), v7)
        return totals


class ListenStream(Command):
    kind = "listen"

    def __init__(
        self,
        session: ApiSession,
        tag: Tag,
        menu: str,
        query: Query,
        proplist: list[str] | None,
    ) -> None:
        super().__init__(session, tag)
        self.menu = menu
        self.query = query
        self.proplist = proplist


def run_command(
    session: ApiSession,
    menu: str,
    command: str,
    attrs: dict[str, str],
    queries: list[str],
    tag: Tag,
) -> None:
    if command in ("print", "getall") and attrs.get("interval"):
        _print_interval(session, menu, attrs, queries, tag)
    elif command in ("print", "getall"):
        _print(session, menu, attrs, queries, tag)
    elif command == "listen":
        _listen(session, menu, attrs, queries, tag)
    elif command == "monitor-traffic":
        _monitor(session, attrs, tag)
    elif command == "ping":
        _ping(session, attrs, tag)


def _print(session: ApiSession, menu: str, attrs: dict[str, str], queries: list[str], tag: Tag) -> None:
    try:
        query = Query(queries)
        rows = [r for r in session.router.table(menu) if query.match(r)]
    except QueryError as exc:
        session.send(trap(str(exc), 1, tag) + tag.sentence(DONE))
        return
    if "count-only" in attrs:
        session.send(reply(DONE, [("ret", str(len(rows)))], tag))
        return
    proplist = _proplist(attrs)
    out = [_row_sentence(apply_proplist(r, proplist), tag) for r in rows]
    if not rows and session.router.empty_replies:
        out.append(tag.sentence(EMPTY))
    out.append(tag.sentence(DONE))
    session.send(b"".join(out))


def _print_interval(
    session: ApiSession,
    menu: str,
    attrs: dict[str, str],
    queries: list[str],
    tag: Tag,
) -> None:
    try:
        query = Query(queries)
        interval = max(parse_interval(attrs["interval"]), session.router.config.min_interval)
    except (QueryError, ValueError):
        _bad_argument(session, "value of interval out of range", tag)
        return
    stream = PrintStream(session, tag, menu, query, _proplist(attrs), interval)
    session.register(stream)
    session.start_stream(stream)


def _listen(
    session: ApiSession,
    menu: str,
    attrs: dict[str, str],
    queries: list[str],
    tag: Tag,
) -> None:
    try:
        query = Query(queries)
    except QueryError as exc:
        _bad_argument(session, str(exc), tag)
        return
    # Menus whose items never change here still accept listen; they just stay silent.
    session.register(ListenStream(session, tag, menu, query, _proplist(attrs)))


def _bad_argument(session: ApiSession, message: str, tag: Tag) -> None:
    session.send(trap(message, 1, tag) + tag.sentence(DONE))


def _monitor(session: ApiSession, attrs: dict[str, str], tag: Tag) -> None:
    router = session.router
    cfg = router.config
    names = [n for n in attrs.get("interface", "").split(",") if n]
    if not names:
        _bad_argument(session, "missing value(s) of argument(s) interface", tag)
        return
    interfaces = router.model.interfaces
    ifaces = []
    for n in names:
        # Arguments may name an interface or give its internal id (*1A).
        iface = interfaces.get(n) or (router.model.interface_by_id(n) if n.startswith("*") else None)
        if iface is None:
            _bad_argument(session, "input does not match any value of interface", tag)
            return
        ifaces.append(iface)
    interval = cfg.default_interval
    if attrs.get("interval"):
        try:
            interval = parse_interval(attrs["interval"])
        except ValueError:
            _bad_argument(session, "value of interval out of range", tag)
            return
    interval = max(interval, cfg.min_interval)
    proplist = _proplist(attrs)
    fields = None if proplist is None else [_MONITOR_INDEX[p] for p in proplist if p in _MONITOR_INDEX]
    now = router.model.now_ms()
    if _is_set(attrs, "once"):
        out = []
        for iface in ifaces:
            words = router.model.with_injected(iface.name, iface.monitor_words(now))
            body = b"".join(words) if fields is None else b"".join([words[i] for i in fields])
            out.append(tag.sentence(RE, body))
        out.append(tag.sentence(DONE))
        session.send(b"".join(out))
        return
    deadline = None
    if attrs.get("duration"):
        try:
            deadline = session.loop_time() + parse_interval(attrs["duration"])
        except ValueError:
            _bad_argument(session, "value of duration out of range", tag)
            return
    stream = MonitorStream(session, tag, ifaces, interval, fields, deadline)
    session.register(stream)
    session.start_stream(stream)


def _ping(session: ApiSession, attrs: dict[str, str], tag: Tag) -> None:
    cfg = session.router.config
    address = attrs.get("address", "")
    if not address:
        _bad_argument(session, "missing value(s) of argument(s) address", tag)
        return
    try:
        ipaddress.ip_address(address)
    except ValueError:
        # A router would try the name in DNS; the simulator has none.
        _bad_argument(session, "invalid value for argument address", tag)
        return
    interval = _PING_INTERVAL
    if attrs.get("interval"):
        try:
            interval = parse_interval(attrs["interval"])
        except ValueError:
            _bad_argument(session, "value of interval out of range", tag)
            return
    count: int | None = None
    if attrs.get("count"):
        text = attrs["count"]
        if not text.isdigit() or int(text) > 0xFFFFFFFF:
            _bad_argument(session, "value of count out of range", tag)
            return
        count = int(text) or None  # count=0 pings for ever, like no count
    stream = PingStream(session, tag, address, max(interval, cfg.min_interval), count)
    session.register(stream)
    session.start_stream(stream)
