"""THE stream message: building entries from router rows, encoding, decoding.

One entry per sample (type "traffic") or per status change (type "started",
"offline", "reconnecting", "resumed", "stopped"). Stored in Redis as a flat
str -> str hash (stream fields); `decode_entry` turns it back into the JSON-ready
dict the WebSocket sends, with ints as ints and the stream id as `id`.

A monitor's ping (tasks/pinger.py) writes "latency" entries, one per probe reply: of
the metadata only customer_id, session_id, fence and timestamp; address, ping_seq (the
router's seq), rtt_ms (null when lost), status (null when answered, else the router's
words: "timeout", "host unreachable"), loss_pct (over the last probes). They carry no
`seq`: the session's seq counts traffic and status entries only, which loss counting
relies on. Traffic entries carry `rtt_ms` too: the latest answered probe's, when recent
(README, Stream message format).

A router watch (tasks/watch.py) writes the router-wide types: "top" (one frame per
cycle: totals and the top customers, the list as JSON in the `top` field) and
"session_up" / "session_down" (a known customer's PPPoE or hotspot session). README,
The router view, documents their fields.

Fields (README, Stream message format; the seed's first seven are unchanged):
  customer_id, customer_name, username, service_type, interface   metadata
  rx_bits_per_second, tx_bits_per_second   the router's raw strings (router's view)
  download_speed, upload_speed             human, SI, always two decimals: "5.23 Mbps",
                                           "950.00 kbps", "0.00 bps" (1 k = 1000)
  timestamp                                RFC 3339 UTC with milliseconds, "...T10:21:44.123Z"
  type, router, download_bps, upload_bps (int), download_pps, upload_pps (int or null),
  package, package_download_bps, package_upload_bps (null when the customer has none),
  download_utilization, upload_utilization (percent of the package speed, two decimals,
  null without a package speed), seq (int, per session), session_id, fence (int or null),
  reason (status events only; required for "stopped").

Directions (docs/routeros.md, Directions): on a router interface facing the customer, above all the
server-side dynamic ones (<pppoe-...>, <l2tp-...>, <pptp-...>, <sstp-...>, <ovpn-...>),
tx is what the router sends to the customer = download, rx = upload. Simple-queue pairs
"A/B" are upload/download from the target's view, so for a queue row the raw
rx_bits_per_second carries the upload half and tx_bits_per_second the download half,
keeping "rx = router received = customer upload". Queue `rate` is taken as bits/s
(what Winbox and the CLI display; the manual's "bytes" wording is disputed: docs/routeros.md,
Directions).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.text import as_text
from tasks.timestamps import rfc3339

TRAFFIC = "traffic"
STATUS_TYPES = ("started", "offline", "reconnecting", "resumed", "stopped")
# The router watch's types: one frame per cycle, and a known customer's session events.
TOP = "top"
SESSION_UP = "session_up"
SESSION_DOWN = "session_down"
SESSION_TYPES = (SESSION_UP, SESSION_DOWN)
ROUTER_TYPES = (TOP, *SESSION_TYPES)
# The monitor's ping: one entry per probe reply. Like the router types, sent only to
# clients that ask for it (the name `ping` is the WebSocket's keep-alive frame).
LATENCY = "latency"
# Alert events (tasks/alerts.py), on their own stream (keys.ALERTS_STREAM).
ALERT_FIRING = "alert_firing"
ALERT_RESOLVED = "alert_resolved"
ALERT_ACKNOWLEDGED = "alert_acknowledged"
ALERT_TYPES = (ALERT_FIRING, ALERT_RESOLVED, ALERT_ACKNOWLEDGED)
# Written by the fenced publish itself (tasks/publisher.py) when a session's entries
# seq_from..seq_to are not in the stream (a Redis failover, a failed publish): the hole
# is told to every reader instead of being found missing. `from`: the customer stream's
# last entry before the hole; decode_entry adds `to` (its own id), as in the relay's
# resume gap frame (docs/architecture.md, Redis failover).
GAP = "gap"
MESSAGE_TYPES = (TRAFFIC, *STATUS_TYPES, *ROUTER_TYPES, LATENCY, *ALERT_TYPES, GAP)
# What the `started` event's `ping` field says about the monitor's ping.
PING_ON = "on"
PING_OFF = "off"  # MONITOR_PING false, or ping=false at the start
PING_NO_ADDRESS = "no address"  # the customer has no address to ping
PING_CAPPED = "capped"  # PING_MAX_PER_ROUTER reached
PING_STATES = (PING_ON, PING_OFF, PING_NO_ADDRESS, PING_CAPPED)

INT_FIELDS = frozenset(
    {
        "download_bps",
        "upload_bps",
        "download_pps",
        "upload_pps",
        "package_download_bps",
        "package_upload_bps",
        "seq",
        "fence",
        "online",
        "unknown",
        "customers",
        "interval_ms",
        "cycle_ms",
        "uptime_s",
        "ping_seq",
        "rule_id",
        "seq_from",
        "seq_to",
        "lost",
    }
)
FLOAT_FIELDS = frozenset(
    {"download_utilization", "upload_utilization", "loss_pct", "rtt_ms", "value", "threshold"}
)
# Floats written with up to three decimals (milliseconds to the microsecond), not two.
MILLI_FIELDS = frozenset({"rtt_ms"})
# Written as JSON text, read back as JSON (the top frame's list of customers).
JSON_FIELDS = frozenset({"top"})
# Encoded as "" when absent; decoded back to None.
NULLABLE_FIELDS = frozenset(
    {
        "download_pps",
        "upload_pps",
        "package",
        "package_download_bps",
        "package_upload_bps",
        "download_utilization",
        "upload_utilization",
        "fence",
        "reason",
        "address",
        "caller_id",
        "uptime_s",
        "ping_seq",
        "rtt_ms",
        "status",
        "loss_pct",
        # alert events: a router subject has no customer; only some events have these
        "customer_id",
        "customer_name",
        "username",
        "value",
        "threshold",
        "resolved_at",
        "acknowledged_by",
    }
)


class MessageError(ValueError):
    """A router value or message field cannot be understood; names the field."""


@dataclass(frozen=True)
class CustomerMeta:
    """What every entry says about whom it measures (never any secret)."""

    customer_id: str
    customer_name: str
    username: str
    service_type: str
    interface: str
    router: str
    package: str | None = None
    package_download_bps: int | None = None
    package_upload_bps: int | None = None


@dataclass(frozen=True)
class Rates:
    """One sample from the customer's view, with the router's raw strings kept."""

    rx_bits_per_second: str
    tx_bits_per_second: str
    download_bps: int
    upload_bps: int
    download_pps: int | None
    upload_pps: int | None


# The API sends plain integers; the CLI shows "27.8kbps". Accept an optional SI prefix
# and unit, nothing else: "1e5", "-3", "nan", "inf", "fast" and "" are errors, not zeros.
_VALUE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKMGT]?)(bps|b/s|pps|p/s)?\s*$")
_PREFIX = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS = ("bps", "kbps", "Mbps", "Gbps", "Tbps")
# The largest rate a sample may carry (docs/routeros.md, Bounds on replies). The fastest
# router ports run at 400 Gbit/s; 10**15 (1 Pbit/s) is 2,500 times that and still below
# 2**53, so every JSON reader, JavaScript's numbers included, holds it exactly. A larger
# value is a corrupt counter, not traffic; unchecked, 400 digits reached float() as inf
# and int() raised OverflowError out of the monitor.
MAX_RATE = 10**15
# Longest text taken for a rate: MAX_RATE has 16 digits, a decimal part, prefix and unit
# add a few. A longer one is refused before float() reads it.
_MAX_RATE_TEXT = 40


def parse_rate(value: str, field: str) -> int:
    """A per-second rate as the router writes it ("159176", "27.8kbps") -> int."""
    if not isinstance(value, str):
        raise MessageError(f"{field}: expected a string from the router, got {type(value).__name__}")
    if len(value) > _MAX_RATE_TEXT:
        raise MessageError(f"{field}: not a rate: {len(value)} characters, starting {value[:20]!r}")
    match = _VALUE.match(value)
    if not match:
        raise MessageError(f"{field}: not a rate: {value!r}")
    number, prefix, _unit = match.groups()
    rate = float(number) * _PREFIX[prefix]  # finite: at most _MAX_RATE_TEXT digits
    if rate > MAX_RATE:
        raise MessageError(f"{field}: {value!r} is beyond any link's speed (the limit is {MAX_RATE})")
    return int(round(rate))


def parse_pair(value: str, field: str) -> tuple[int, int]:
    """A simple-queue pair "UP/DOWN" -> (upload, download)."""
    up, down = split_pair(value, field)
    return parse_rate(up, field), parse_rate(down, field)


def split_pair(value: str, field: str) -> tuple[str, str]:
    if not isinstance(value, str) or value.count("/") != 1:
        raise MessageError(f"{field}: expected an 'upload/download' pair, got {str(value)[:40]!r}")
    up, down = value.split("/")
    return up.strip(), down.strip()


def format_bps(bps: int | float) -> str:
    """Human SI speed with two decimals: 5230000 -> "5.23 Mbps", 0 -> "0.00 bps"."""
    if bps < 0 or math.isnan(bps):
        raise MessageError(f"speed must be a non-negative number, got {bps!r}")
    value = float(bps)
    unit = 0
    # Promote after rounding so 999_999 reads "1.00 Mbps", not "1000.00 kbps".
    while unit < len(_UNITS) - 1 and round(value, 2) >= 1000:
        value /= 1000
        unit += 1
    return f"{value:.2f} {_UNITS[unit]}"


def utilization(bps: int, package_bps: int | None) -> float | None:
    """Percent of the package speed, two decimals; None without a package speed."""
    if not package_bps:
        return None
    return round(100.0 * bps / package_bps, 2)


def _optional_rate(row: Mapping[str, str], field: str) -> int | None:
    value = row.get(field)
    return None if value is None else parse_rate(value, field)


def rates_from_interface(row: Mapping[str, str]) -> Rates:
    """A monitor-traffic `!re`: the router sends (tx) to the customer = download."""
    for field in ("rx-bits-per-second", "tx-bits-per-second"):
        if field not in row:
            raise MessageError(f"{field}: missing from the monitor-traffic reply")
    rx, tx = row["rx-bits-per-second"], row["tx-bits-per-second"]
    return Rates(
        rx_bits_per_second=rx,
        tx_bits_per_second=tx,
        download_bps=parse_rate(tx, "tx-bits-per-second"),
        upload_bps=parse_rate(rx, "rx-bits-per-second"),
        download_pps=_optional_rate(row, "tx-packets-per-second"),
        upload_pps=_optional_rate(row, "rx-packets-per-second"),
    )


def rates_from_queue(row: Mapping[str, str]) -> Rates:
    """A /queue/simple row: `rate` and `packet-rate` are "upload/download"."""
    if "rate" not in row:
        raise MessageError("rate: missing from the simple-queue row")
    up_raw, down_raw = split_pair(row["rate"], "rate")
    upload_pps = download_pps = None
    if row.get("packet-rate") is not None:
        upload_pps, download_pps = parse_pair(row["packet-rate"], "packet-rate")
    return Rates(
        rx_bits_per_second=up_raw,
        tx_bits_per_second=down_raw,
        download_bps=parse_rate(down_raw, "rate"),
        upload_bps=parse_rate(up_raw, "rate"),
        download_pps=download_pps,
        upload_pps=upload_pps,
    )


def rates_from_row(row: Mapping[str, str]) -> Rates:
    """Either kind of row: a queue row has `rate`, a monitor-traffic row has rx/tx bits."""
    return rates_from_queue(row) if "rate" in row else rates_from_interface(row)


def _meta_fields(meta: CustomerMeta) -> dict[str, Any]:
    return {
        "customer_id": str(meta.customer_id),
        "customer_name": meta.customer_name,
        "username": meta.username,
        "service_type": meta.service_type,
        "interface": meta.interface,
        "router": meta.router,
        "package": meta.package,
        "package_download_bps": meta.package_download_bps,
        "package_upload_bps": meta.package_upload_bps,
    }


def _encode(fields: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in fields.items():
        if value is None:
            if name not in NULLABLE_FIELDS:
                raise MessageError(f"{name}: required field is missing")
            out[name] = ""
        elif isinstance(value, bool):
            raise MessageError(f"{name}: booleans are not part of the message")
        elif name in MILLI_FIELDS:
            out[name] = _milli(float(value))
        elif name in FLOAT_FIELDS:
            out[name] = f"{float(value):.2f}"
        else:
            out[name] = str(value)
    return out


def _milli(value: float) -> str:
    """Up to three decimals, no trailing zeros: 12.5 -> "12.5", 0.4734 -> "0.473"."""
    if not math.isfinite(value) or value < 0:
        raise MessageError(f"rtt_ms: must be a non-negative number, got {value!r}")
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def traffic_entry(
    meta: CustomerMeta,
    rates: Rates,
    *,
    session_id: object,
    seq: int,
    fence: int,
    timestamp: datetime | None = None,
    rtt_ms: float | None = None,
) -> dict[str, str]:
    """The stream fields of one traffic sample; `rtt_ms`: the monitor's latest recent
    ping answer (None without one)."""
    fields: dict[str, Any] = {"type": TRAFFIC, **_meta_fields(meta)}
    fields.update(
        rx_bits_per_second=rates.rx_bits_per_second,
        tx_bits_per_second=rates.tx_bits_per_second,
        download_bps=rates.download_bps,
        upload_bps=rates.upload_bps,
        download_speed=format_bps(rates.download_bps),
        upload_speed=format_bps(rates.upload_bps),
        download_pps=rates.download_pps,
        upload_pps=rates.upload_pps,
        download_utilization=utilization(rates.download_bps, meta.package_download_bps),
        upload_utilization=utilization(rates.upload_bps, meta.package_upload_bps),
        timestamp=rfc3339(timestamp),
        seq=int(seq),
        session_id=str(session_id),
        fence=int(fence),
        rtt_ms=rtt_ms,
    )
    return _encode(fields)


def traffic_from_row(
    row: Mapping[str, str],
    meta: CustomerMeta,
    *,
    session_id: object,
    seq: int,
    fence: int,
    timestamp: datetime | None = None,
    rtt_ms: float | None = None,
) -> dict[str, str]:
    """Raw router row (interface or queue) + metadata -> stream fields."""
    return traffic_entry(
        meta,
        rates_from_row(row),
        session_id=session_id,
        seq=seq,
        fence=fence,
        timestamp=timestamp,
        rtt_ms=rtt_ms,
    )


def status_entry(
    kind: str,
    meta: CustomerMeta,
    *,
    session_id: object,
    seq: int,
    fence: int | None,
    reason: str | None = None,
    timestamp: datetime | None = None,
    ping: str | None = None,
) -> dict[str, str]:
    """The stream fields of a status event; "stopped" must say why. `ping`: the
    `started` event's word on the monitor's ping (one of PING_STATES)."""
    if kind not in STATUS_TYPES:
        raise MessageError(f"type: {kind!r} is not one of {', '.join(STATUS_TYPES)}")
    if kind == "stopped" and not reason:
        raise MessageError("reason: a stopped event must carry a reason")
    if ping is not None and (kind != "started" or ping not in PING_STATES):
        raise MessageError(f"ping: {ping!r} belongs to a started event, one of {', '.join(PING_STATES)}")
    fields: dict[str, Any] = {"type": kind, **_meta_fields(meta)}
    fields.update(
        timestamp=rfc3339(timestamp),
        seq=int(seq),
        session_id=str(session_id),
        fence=None if fence is None else int(fence),
        reason=reason,
    )
    if ping is not None:
        fields["ping"] = ping
    return _encode(fields)


def latency_entry(
    meta: CustomerMeta,
    *,
    address: str,
    ping_seq: int | None,
    rtt_ms: float | None,
    status: str | None,
    loss_pct: float | None,
    session_id: object,
    fence: int,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    """The stream fields of one ping reply: `rtt_ms` None when the probe got no answer,
    `status` None when it did (else the router's words). No `seq` (module docstring).

    Of the customer's metadata only `customer_id`: a reply a second per monitor is as
    many entries as the samples, and who the customer is, its plan and router are on
    every sample and status event of the same session already (half the bytes in
    Redis, half the fields to encode, send and decode)."""
    if loss_pct is not None and not 0.0 <= loss_pct <= 100.0:
        raise MessageError(f"loss_pct: must be within 0..100, got {loss_pct!r}")
    fields: dict[str, Any] = {"type": LATENCY, "customer_id": str(meta.customer_id)}
    fields.update(
        address=address,
        ping_seq=None if ping_seq is None else int(ping_seq),
        rtt_ms=rtt_ms,
        status=status or None,
        loss_pct=loss_pct,
        timestamp=rfc3339(timestamp),
        session_id=str(session_id),
        fence=int(fence),
    )
    return _encode(fields)


# -- the router watch's entries ------------------------------------------------------------------


@dataclass(frozen=True)
class RouterMeta:
    """What every router-wide entry says about its router."""

    router: str  # the router's id (customers.mikrotik_id)
    router_name: str


def top_row(meta: CustomerMeta, download_bps: int, upload_bps: int, monitored: bool) -> dict[str, Any]:
    """One customer of a top frame, as the frame's JSON list holds it."""
    return {
        "customer_id": meta.customer_id,
        "customer_name": meta.customer_name,
        "username": meta.username,
        "service_type": meta.service_type,
        "download_bps": download_bps,
        "upload_bps": upload_bps,
        "download_utilization": utilization(download_bps, meta.package_download_bps),
        "upload_utilization": utilization(upload_bps, meta.package_upload_bps),
        "package_download_bps": meta.package_download_bps,
        "package_upload_bps": meta.package_upload_bps,
        "monitored": monitored,
    }


def top_entries(
    router: RouterMeta,
    *,
    online: int,
    unknown: int,
    customers: int,
    download_bps: int,
    upload_bps: int,
    interval: float,
    cycle_ms: int,
    rows: Sequence[Mapping[str, Any]],
    fence: int,
    timestamp: datetime | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """A cycle's top frame: (the summary for the combined stream, the whole frame for the
    router's stream). The summary is the frame without its `top` list: the combined
    stream's length budget counts entries, and a frame of 50 customers is 20 of them."""
    fields: dict[str, Any] = {
        "type": TOP,
        "router": router.router,
        "router_name": router.router_name,
        "timestamp": rfc3339(timestamp),
        "interval_ms": int(round(interval * 1000)),
        "cycle_ms": int(cycle_ms),
        "online": int(online),
        "unknown": int(unknown),
        "customers": int(customers),
        "download_bps": int(download_bps),
        "upload_bps": int(upload_bps),
        "download_speed": format_bps(download_bps),
        "upload_speed": format_bps(upload_bps),
        "fence": int(fence),
    }
    summary = _encode(fields)
    whole = {**summary, "top": json.dumps(list(rows), separators=(",", ":"))}
    return summary, whole


def session_entry(
    kind: str,
    router: RouterMeta,
    meta: CustomerMeta,
    *,
    session: str,
    name: str,
    address: str | None,
    caller_id: str | None,
    uptime_s: int | None,
    fence: int,
    reason: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    """A known customer's session came up or went down (`session`: pppoe or hotspot;
    `name`: the login the router shows)."""
    if kind not in SESSION_TYPES:
        raise MessageError(f"type: {kind!r} is not one of {', '.join(SESSION_TYPES)}")
    fields: dict[str, Any] = {
        "type": kind,
        "router": router.router,
        "router_name": router.router_name,
        "customer_id": meta.customer_id,
        "customer_name": meta.customer_name,
        "username": meta.username,
        "service_type": meta.service_type,
        "session": session,
        "name": name,
        "address": address or None,
        "caller_id": caller_id or None,
        "uptime_s": uptime_s,
        "reason": reason,
        "timestamp": rfc3339(timestamp),
        "fence": int(fence),
    }
    return _encode(fields)


# -- alert events ------------------------------------------------------------------------------


def alert_entry(
    kind: str,
    *,
    alert_id: str,
    rule_id: int,
    rule_name: str,
    rule_kind: str,
    subject: str,
    customer_id: str | None,
    customer_name: str | None,
    username: str | None,
    router: str,
    summary: str,
    value: float | None,
    threshold: float | None,
    started_at: str,
    resolved_at: str | None = None,
    acknowledged_by: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    """An alert firing, resolving or being acknowledged (README, Alerts). `started_at`,
    `resolved_at`: RFC 3339 text of the alert row's times."""
    if kind not in ALERT_TYPES:
        raise MessageError(f"type: {kind!r} is not one of {', '.join(ALERT_TYPES)}")
    for name, number in (("value", value), ("threshold", threshold)):
        if number is not None and not math.isfinite(number):
            raise MessageError(f"{name}: must be a finite number, got {number!r}")
    fields: dict[str, Any] = {
        "type": kind,
        "alert_id": alert_id,
        "rule_id": int(rule_id),
        "rule_name": rule_name,
        "kind": rule_kind,
        "subject": subject,
        "customer_id": customer_id,
        "customer_name": customer_name,
        "username": username,
        "router": router,
        "summary": summary,
        "value": value,
        "threshold": threshold,
        "started_at": started_at,
        "resolved_at": resolved_at,
        "acknowledged_by": acknowledged_by,
        "timestamp": rfc3339(timestamp),
    }
    return _encode(fields)


def decode_entry(stream_id: str | bytes, fields: Mapping[Any, Any]) -> dict[str, Any]:
    """Stream entry -> JSON-ready dict: `id` first, ints as ints, "" nullables as None.

    Unknown fields pass through as strings so older readers survive newer writers.
    """
    # The relay decodes every entry a client may want (1,000 a second at 1,000 monitors):
    # bytes are decoded inline (as_text, twice a field, was a third of the cost) and each
    # field's reading is one lookup.
    out: dict[str, Any] = {"id": as_text(stream_id)}
    for raw_name, raw_value in fields.items():
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        value = raw_value.decode() if isinstance(raw_value, bytes) else str(raw_value)
        if value == "" and name in NULLABLE_FIELDS:
            out[name] = None
            continue
        reading = _READINGS.get(name)
        if reading is None:
            out[name] = value
            continue
        convert, expected = reading
        try:
            out[name] = convert(value)
        except ValueError:
            raise MessageError(f"{name}: expected {expected}, got {value[:40]!r}") from None
    if out.get("type") == GAP and "to" not in out:
        out["to"] = out["id"]
    return out


# How decode_entry reads a typed field, and what its error says was expected.
_READINGS: dict[str, tuple[Callable[[str], Any], str]] = {
    **{name: (json.loads, "JSON") for name in JSON_FIELDS},
    **{name: (float, "a number") for name in FLOAT_FIELDS},
    **{name: (int, "an integer") for name in INT_FIELDS},
}
