"""A router's active sessions as its watch keeps them: a print, then listen rows.

`/ppp/active` and `/ip/hotspot/active` are read the same way (docs/routeros.md,
Long-running commands): `listen` is issued first and `print` second, so no change
falls between them; the print is the snapshot (`load`), and every listen row after it
is applied in order (`apply`): a row with a new `.id` is a session that came up, a
row with `.dead` (`yes` on RouterOS 6, `true` on 7) one that went down, any other row
an update of a known session. A PPPoE reconnect is a dead row, then a new row with a
new `.id`. Applying a row twice, or a dead row for a session the snapshot never had,
changes nothing, so listen rows that raced the print are harmless.

After the connection was lost (the client re-issues the listen, whose changes
meanwhile are gone), `load` of a fresh print returns what came up and went down in
the meantime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

SessionKind = Literal["pppoe", "hotspot"]

# What the watch asks the router for (=.proplist=): the login, where it comes from, for
# how long. Hotspot's `user`/`mac-address` are PPP's `name`/`caller-id`.
PPP_PROPLIST = (".id", "name", "address", "caller-id", "uptime")
HOTSPOT_PROPLIST = (".id", "user", "address", "mac-address", "uptime")
_FIELDS: dict[SessionKind, tuple[str, str]] = {
    "pppoe": ("name", "caller-id"),
    "hotspot": ("user", "mac-address"),
}

_DEAD = ("yes", "true")
_DURATION = re.compile(r"(\d+)(w|d|h|ms|m|s|us|ns)")
_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_duration(text: str | None) -> int | None:
    """RouterOS durations ("3w4d12h23m12s", "1m5s570ms", "00:01:02") in whole seconds;
    None for anything else."""
    if not text:
        return None
    text = text.strip()
    if ":" in text:
        days = 0
        if "d" in text:  # "1d02:03:04"
            head, _, text = text.partition("d")
            if not head.isdigit():
                return None
            days = int(head)
        parts = text.split(":")
        if len(parts) != 3 or not all(p.replace(".", "", 1).isdigit() for p in parts):
            return None
        h, m, s = parts
        return days * 86400 + int(h) * 3600 + int(m) * 60 + int(float(s))
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += int(match[1]) * _SECONDS[match[2]]
        pos = match.end()
    if pos != len(text) or pos == 0:
        return None
    return int(total)


@dataclass(frozen=True)
class Session:
    """One active session as the router showed it; `uptime_s` was true at `seen`
    (monotonic seconds of this process)."""

    kind: SessionKind
    id: str
    name: str
    address: str | None
    caller_id: str | None
    uptime_s: int | None
    seen: float

    def uptime_at(self, now: float) -> int | None:
        if self.uptime_s is None:
            return None
        return self.uptime_s + max(0, int(now - self.seen))


class SessionTable:
    """One menu's active sessions, by `.id`."""

    def __init__(self, kind: SessionKind) -> None:
        self.kind = kind
        self.by_id: dict[str, Session] = {}
        self.loaded = False

    def __len__(self) -> int:
        return len(self.by_id)

    def sessions(self) -> list[Session]:
        return list(self.by_id.values())

    def load(self, rows: list[dict[str, str]], now: float) -> tuple[list[Session], list[Session]]:
        """Replace the table by a print's rows; (came up, went down) since the table
        before (nothing on the first load: those sessions did not just change)."""
        fresh: dict[str, Session] = {}
        for row in rows:
            session = self._session(row, now)
            if session is not None:
                fresh[session.id] = session
        first = not self.loaded
        old, self.by_id, self.loaded = self.by_id, fresh, True
        if first:
            return [], []
        up = [s for key, s in fresh.items() if key not in old]
        down = [s for key, s in old.items() if key not in fresh]
        return up, down

    def apply(self, row: dict[str, str], now: float) -> tuple[Literal["up", "down"], Session] | None:
        """A listen row: ("up", session) for a new one, ("down", session) for one that
        ended (the session as last known, its uptime carried to now), None otherwise."""
        key = row.get(".id")
        if not key:
            return None
        if row.get(".dead") in _DEAD:
            gone = self.by_id.pop(key, None)
            if gone is None:
                return None
            return "down", replace(gone, uptime_s=gone.uptime_at(now), seen=now)
        known = self.by_id.get(key)
        if known is not None:
            # An update (listen rows may carry only what changed): keep what it omits.
            name_field, caller_field = _FIELDS[self.kind]
            self.by_id[key] = replace(
                known,
                name=row.get(name_field, known.name),
                address=row.get("address", known.address) or None,
                caller_id=row.get(caller_field, known.caller_id) or None,
                uptime_s=parse_duration(row["uptime"]) if "uptime" in row else known.uptime_s,
                seen=now if "uptime" in row else known.seen,
            )
            return None
        session = self._session(row, now)
        if session is None:
            return None
        self.by_id[key] = session
        return "up", session

    def _session(self, row: dict[str, str], now: float) -> Session | None:
        name_field, caller_field = _FIELDS[self.kind]
        key, name = row.get(".id"), row.get(name_field)
        if not key or not name:
            return None
        return Session(
            kind=self.kind,
            id=key,
            name=name,
            address=row.get("address") or None,
            caller_id=row.get(caller_field) or None,
            uptime_s=parse_duration(row.get("uptime")),
            seen=now,
        )
