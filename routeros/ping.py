"""Reading the rows of RouterOS `/ping` (docs/routeros.md, Ping).

Every probe row carries the probe (`seq`, `host`, `time` or `status`) and the running
totals (`sent`, `received`, `packet-loss`, `*-rtt`). A row with `sent` but no `seq` is a
summary row. Values are the router's text; anything unreadable raises PingParseError
naming the field, so a caller can skip that row with one warning instead of failing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PingReply", "PingParseError", "parse_ping_row", "parse_duration_ms"]

# Far beyond anything a router sends; keeps a hostile peer's 400-digit value out of float().
_MAX_TEXT = 40
_MAX_COUNT = 10**12
_UNIT_MS = {
    "w": 604_800_000.0,
    "d": 86_400_000.0,
    "h": 3_600_000.0,
    "m": 60_000.0,
    "s": 1000.0,
    "ms": 1.0,
    "us": 0.001,
    "ns": 0.000001,
}
# "ms" before "m" and "s": the longest unit wins at each position.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|w|d|h|m|s)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CLOCK = re.compile(r"(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)")


class PingParseError(ValueError):
    """A `/ping` row field the router sent cannot be read."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(f"ping row field {field!r}: {reason} (got {value[:_MAX_TEXT]!r})")
        self.field = field
        self.value = value


@dataclass(frozen=True)
class PingReply:
    seq: int | None  # None on a summary row (has `sent` but no `seq`)
    host: str | None
    rtt_ms: float | None  # from `time`; None on timeout / unreachable
    status: str | None  # None when answered; else the router's words ("timeout", ...)
    sent: int | None
    received: int | None
    packet_loss: int | None  # percent, the router's running total
    summary: bool


def parse_duration_ms(text: str) -> float:
    """A RouterOS duration in milliseconds: "10ms", "1ms473us", "473us", "1s2ms", "1m3s",
    "00:00:01.5"; a bare number ("12", "0.5") is taken as milliseconds (unverified, see
    docs/routeros.md, Ping). ValueError for anything else."""
    t = text.strip()
    if not t or len(t) > _MAX_TEXT:
        raise ValueError(f"not a duration: {text[:_MAX_TEXT]!r}")
    if _NUMBER.fullmatch(t):
        value = float(t)
    elif m := _CLOCK.fullmatch(t):
        value = (int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))) * 1000.0
    else:
        value = 0.0
        pos = 0
        for part in _PART.finditer(t):
            if part.start() != pos:
                break
            value += float(part.group(1)) * _UNIT_MS[part.group(2)]
            pos = part.end()
        if pos != len(t):
            raise ValueError(f"not a duration: {text!r}")
    if not math.isfinite(value):
        raise ValueError(f"not a duration: {text!r}")
    return value


def _count(row: Mapping[str, str], field: str) -> int | None:
    value = row.get(field)
    if value is None or value == "":
        return None
    if len(value) > _MAX_TEXT or not value.isdigit() or int(value) > _MAX_COUNT:
        raise PingParseError(field, value, "not a whole number")
    return int(value)


def _loss(row: Mapping[str, str]) -> int | None:
    value = row.get("packet-loss")
    if value is None or value == "":
        return None
    # The API sends "0"; the CLI and some clients show "0%" (docs/routeros.md, Ping).
    text = value.strip().removesuffix("%")
    if len(text) > _MAX_TEXT or not _NUMBER.fullmatch(text):
        raise PingParseError("packet-loss", value, "not a percentage")
    percent = float(text)
    if percent > 100:
        raise PingParseError("packet-loss", value, "more than 100 percent")
    return round(percent)


def parse_ping_row(row: Mapping[str, str]) -> PingReply:
    """One `!re` of `/ping` as a PingReply; PingParseError names the field it cannot read."""
    seq = _count(row, "seq")
    sent = _count(row, "sent")
    received = _count(row, "received")
    packet_loss = _loss(row)
    host = row.get("host") or None
    status = row.get("status") or None
    summary = seq is None and sent is not None
    rtt_ms: float | None = None
    time_text = row.get("time")
    if status is None and not summary:
        if not time_text:
            raise PingParseError("time", time_text or "", "a probe row with neither time nor status")
        try:
            rtt_ms = parse_duration_ms(time_text)
        except ValueError:
            raise PingParseError("time", time_text, "not a duration") from None
    return PingReply(
        seq=seq,
        host=host,
        rtt_ms=rtt_ms,
        status=status,
        sent=sent,
        received=received,
        packet_loss=packet_loss,
        summary=summary,
    )
