"""What the Sentinel failover test and the chaos bench (sentinel-failover) measure:
WebSocket readers that keep every seq and gap frame they get, and the stream checks
(holes, gap entries, producers, slots) read from the promoted master."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from common.text import as_text
from tasks import keys
from tasks.message import decode_entry
from tasks.semaphore import Semaphore
from web.relay import parse_id

SeqRanges = list[tuple[int, int]]


@dataclass
class Seen:
    """What one reader got of the sessions it follows: seqs and gap frames' seq ranges."""

    seqs: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    gaps: dict[str, SeqRanges] = field(default_factory=lambda: defaultdict(list))
    horizon_gaps: int = 0  # resume gaps (entries trimmed before a resume): none expected
    last_id: str | None = None

    def take(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "ping":
            return
        if kind == "gap":
            if frame.get("session_id"):
                self.gaps[frame["session_id"]].append((int(frame["seq_from"]), int(frame["seq_to"])))
            else:
                self.horizon_gaps += 1
        elif frame.get("session_id") and frame.get("seq") is not None:
            self.seqs[frame["session_id"]].add(int(frame["seq"]))
        if "id" in frame and (self.last_id is None or parse_id(frame["id"]) > parse_id(self.last_id)):
            self.last_id = frame["id"]

    def silent_holes(self, since: dict[str, int] | None = None) -> dict[str, list[int]]:
        """Per session, the seqs neither received nor covered by a gap frame, between the
        first (or `since[session] + 1`) and the last received."""
        out: dict[str, list[int]] = {}
        for session, seqs in self.seqs.items():
            if not seqs:
                continue
            low = min(seqs) if since is None or session not in since else since[session] + 1
            covered = set(seqs)
            for a, b in self.gaps.get(session, []):
                covered.update(range(a, b + 1))
            missing = [s for s in range(low, max(seqs) + 1) if s not in covered]
            if missing:
                out[session] = missing
        return out

    def last_seqs(self) -> dict[str, int]:
        return {s: max(v) for s, v in self.seqs.items() if v}


class FeedReader(threading.Thread):
    """One `/ws` client following some customers; reconnects with its last id when the
    server closes it (resume by id), counting reconnects."""

    def __init__(self, base: str, customers: list[str]) -> None:
        super().__init__(name="feed-reader", daemon=True)
        self.base = base
        self.customers = customers
        self.seen = Seen()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reconnects = 0
        self.errors: list[str] = []

    def url(self, last_id: str | None) -> str:
        query = "&".join(f"customer_id={c}" for c in self.customers)
        return f"{self.base}/ws?{query}" + (f"&last_id={last_id}" if last_id else "")

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with connect(self.url(self.seen.last_id), open_timeout=10, close_timeout=1) as ws:
                    self._read(ws)
            except (ConnectionClosed, OSError, TimeoutError) as exc:
                self.errors.append(repr(exc))
                self.reconnects += 1
                self.stopping.wait(0.2)

    def _read(self, ws: ClientConnection) -> None:
        while not self.stopping.is_set():
            try:
                message = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            frame = json.loads(message)
            with self.lock:
                self.seen.take(frame)

    def snapshot_last(self) -> tuple[str | None, dict[str, int]]:
        with self.lock:
            return self.seen.last_id, self.seen.last_seqs()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def resume_from(base: str, customers: list[str], last_id: str, until_id: str, timeout: float) -> Seen:
    """A fresh connection resuming at `last_id`: what it gets up to `until_id` (catch-up,
    then live), as a client coming back after the failover would."""
    seen = Seen()
    reader = FeedReader(base, customers)
    deadline = time.monotonic() + timeout
    with connect(reader.url(last_id), open_timeout=10, close_timeout=1) as ws:
        while seen.last_id is None or parse_id(seen.last_id) < parse_id(until_id):
            left = deadline - time.monotonic()
            assert left > 0, f"resume from {last_id} did not reach {until_id} in {timeout}s"
            seen.take(json.loads(ws.recv(timeout=left)))
    return seen


@dataclass
class StreamAudit:
    """One customer stream as the promoted master holds it."""

    lost: int = 0  # seqs the gap entries declare missing
    gap_entries: int = 0
    silent: int = 0  # seqs missing with no gap entry covering them
    interleaved: bool = False  # two producers' samples interleaved (a duplicate producer)


def audit_stream(client: redis.Redis, customer_id: str, session_id: str, since_ms: int) -> StreamAudit:
    """Holes, gap entries and producers of the session's entries written from `since_ms`."""
    audit = StreamAudit()
    seqs: set[int] = set()
    covered: set[int] = set()
    runs: list[int] = []  # fences of the traffic entries, one per run, in stream order
    reply: Any = client.xrange(keys.customer_stream(customer_id), min=str(since_ms))
    for entry_id, fields in reply:
        entry = decode_entry(entry_id, fields)
        if entry.get("session_id") != session_id:
            continue
        if entry["type"] == "gap":
            audit.gap_entries += 1
            audit.lost += int(entry["lost"])
            covered.update(range(int(entry["seq_from"]), int(entry["seq_to"]) + 1))
            continue
        if entry.get("seq") is not None:
            seqs.add(int(entry["seq"]))
        if entry["type"] == "traffic" and (not runs or runs[-1] != entry["fence"]):
            runs.append(entry["fence"])
    audit.interleaved = len(runs) != len(set(runs))
    if seqs:
        audit.silent = sum(1 for s in range(min(seqs), max(seqs) + 1) if s not in seqs and s not in covered)
    return audit


@dataclass(frozen=True)
class SlotAudit:
    holders: int
    customers: int  # distinct customers among the holders
    orphans: int  # holders that do not own their customer
    router_members: int


def audit_slots(client: redis.Redis) -> SlotAudit:
    """The monitors' slots: one per customer, each its customer's owner, the routers' zsets
    (of the holders' routers) alike."""
    holders = Semaphore(client).holders()
    router_ids = {h.router_id for h in holders}
    orphans = 0
    for holder in holders:
        owner: Any = client.hget(keys.customer_owner(holder.customer_id), "token")
        if owner is None or as_text(owner) != holder.token:
            orphans += 1
    members = sum(int(client.zcard(keys.router_slots(r))) for r in router_ids)
    return SlotAudit(len(holders), len({h.customer_id for h in holders}), orphans, members)
