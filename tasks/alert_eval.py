"""Alert evaluation as pure functions and small state: no I/O, no clock of its own.

The evaluators are fed what their host already has (tasks/alert_hooks.py wires them):
the router watch's cycle (every customer's rate, the router's total) and its session
events, the monitor's ping replies, the reconciler's look at each router's view.
They say which alerts fire or resolve (`Transition`); tasks/alerts.py writes them.

Hysteresis on both edges (README, Alerts, "When an alert fires and resolves"):
- a condition must hold continuously for the rule's `for_s` before the alert fires
  (session_flaps and rtt hold over their own window: they fire at once). A rate is the
  average over the cycle it ends (byte counters read a cycle apart), so a rate at or
  above the threshold holds from that cycle's start, the previous reading: the time is
  counted from there, not from when the cycle ended, or every alert would fire one
  cycle late. `for_s` is met within FOR_S_SLACK, the jitter of cycle times (a cycle
  `for_s` later may end a few ms short of it);
- a firing alert resolves only once the condition has been clear continuously for
  ALERT_RESOLVE_S, "clear" being below the threshold by a band (BAND_POINTS points
  of plan for utilisation; BAND_FRACTION of the threshold for a router total and an
  RTT p95; BAND_POINTS of loss; half the flap count). A value inside the band neither
  fires nor resolves: it stops the clear timer and the firing timer both.

Per check (a customer under a rule) the cost is a dict look-up and a few float
operations; state (`Track`) exists only for subjects whose condition holds or whose
alert is open, so a quiet router allocates nothing per cycle.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from models.enums import AlertKind

FIRE: Literal["fire"] = "fire"
RESOLVE: Literal["resolve"] = "resolve"
Edge = Literal["fire", "resolve"]

# How far below the threshold "clear" is: points of plan (utilisation) or of loss.
BAND_POINTS = 5.0
# ... or a share of the threshold (router total, RTT p95).
BAND_FRACTION = 0.05
# Cycle times jitter by a few ms: `for_s` is met this much early rather than a cycle late.
FOR_S_SLACK = 0.25
# The longest span a cycle's rates are counted from its previous reading; past it (a
# stalled watch) a condition counts from the cycle's end.
MAX_RATE_SPAN = 10.0
# An RTT window says nothing before it holds this many probes.
RTT_MIN_PROBES = 5


@dataclass(frozen=True)
class RuleSpec:
    """An enabled rule, as the evaluators read it (tasks/alert_rules.py builds them)."""

    id: int
    name: str
    kind: AlertKind
    scope_kind: str  # all, router, package, customer
    scope_id: str | None
    params: Mapping[str, Any]
    # package scope: the package's customers when the rules were read
    members: frozenset[str] = frozenset()

    def covers(self, customer_id: str | None, router_id: str) -> bool:
        kind = self.scope_kind
        if kind == "all":
            return True
        if kind == "router":
            return self.scope_id == router_id
        if customer_id is None:
            return False
        if kind == "customer":
            return self.scope_id == customer_id
        return customer_id in self.members

    def covers_router(self, router_id: str) -> bool:
        """Whether a router-wide rule (router_total, watch_offline) covers this router."""
        return self.scope_kind == "all" or (self.scope_kind == "router" and self.scope_id == router_id)

    @property
    def for_s(self) -> float:
        return float(self.params.get("for_s", 0))


class Track:
    """One rule and subject: since when the condition holds, since when it is clear,
    and whether its alert is open."""

    __slots__ = ("since", "clear_since", "firing", "seen", "value")

    def __init__(self, firing: bool = False) -> None:
        self.since: float | None = None
        self.clear_since: float | None = None
        self.firing = firing
        self.seen = -1  # the evaluator's cycle number when last checked
        self.value = 0.0

    @property
    def idle(self) -> bool:
        return not self.firing and self.since is None

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "clear_since": self.clear_since, "firing": self.firing}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Track:
        track = cls(bool(data.get("firing")))
        track.since = _number_or_none(data.get("since"))
        track.clear_since = _number_or_none(data.get("clear_since"))
        return track


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def step(
    track: Track,
    on: bool,
    clear: bool,
    now: float,
    for_s: float,
    resolve_s: float,
    began: float | None = None,
) -> Edge | None:
    """Advance one track by one observation: `on` the condition holds, `clear` it is
    clear by the band (never both); `began` is when the observed span started (a
    cycle's rate: the previous reading), `now` when it ended. The edge it crossed, if any."""
    if not track.firing:
        track.clear_since = None
        if not on:
            track.since = None
            return None
        if track.since is None:
            track.since = now if began is None else began
        if now - track.since >= for_s - FOR_S_SLACK:
            track.firing = True
            return FIRE
        return None
    if not clear:
        track.clear_since = None
        return None
    if track.clear_since is None:
        track.clear_since = now
    if now - track.clear_since >= resolve_s:
        track.firing = False
        track.since = track.clear_since = None
        return RESOLVE
    return None


@dataclass(frozen=True)
class Transition:
    """An alert to fire or resolve: what tasks/alerts.py writes."""

    edge: Edge
    rule: RuleSpec
    subject: str  # "customer:<id>" or "router:<id>"
    customer_id: str | None
    router_id: str
    value: float | None
    threshold: float | None
    values: Mapping[str, Any]
    summary: str
    at: float  # epoch seconds: when the condition was met (fire) or cleared (resolve)


@dataclass
class CustomerInfo:
    """Who a customer is, for an alert's summary (the directory's CustomerMeta fits)."""

    customer_name: str
    username: str
    package_download_bps: int | None
    package_upload_bps: int | None


def _minutes(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _bps(bps: float) -> str:
    for unit, size in (("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3)):
        if bps >= size:
            return f"{bps / size:.1f} {unit}"
    return f"{bps:.0f} bps"


class RouterEvaluator:
    """The rules a router watch evaluates, over its cycles and its session events:
    utilization, router_total, session_flaps. One per watch; its tracks are what a
    restarted watch loads (`restore`) so it neither re-fires nor forgets."""

    def __init__(self, router_id: str, resolve_s: float) -> None:
        self.router_id = router_id
        self.resolve_s = resolve_s
        self.rules: tuple[RuleSpec, ...] = ()
        # rule id -> subject id (customer id, or the router id) -> track
        self.tracks: dict[int, dict[str, Track]] = {}
        # rule id -> customer id -> session_down times (epoch s) within the window
        self.downs: dict[int, dict[str, deque[float]]] = {}
        self.cycle = 0
        self.checks: dict[str, int] = {}  # kind -> checks made (for the metrics)
        # When the previous cycle's reading was taken: the start of this cycle's rates.
        self.last_cycle_at: float | None = None

    # -- rules and state ------------------------------------------------------------------

    def set_rules(self, rules: Iterable[RuleSpec], now: float) -> list[Transition]:
        """Take the current enabled rules. A rule gone (deleted, disabled, or moved off
        this router) resolves the alerts it had open here, once."""
        kinds = (AlertKind.UTILIZATION, AlertKind.ROUTER_TOTAL, AlertKind.SESSION_FLAPS)
        mine = tuple(
            r for r in rules if r.kind in kinds and (r.scope_kind != "router" or r.scope_id == self.router_id)
        )
        kept = {r.id for r in mine}
        out: list[Transition] = []
        for rule_id in [r for r in self.tracks if r not in kept]:
            old = next((r for r in self.rules if r.id == rule_id), None)
            for subject_id, track in self.tracks.pop(rule_id).items():
                if track.firing and old is not None:
                    out.append(self._transition(RESOLVE, old, subject_id, None, None, now, "rule turned off"))
            self.downs.pop(rule_id, None)
        self.rules = mine
        return out

    def restore(self, open_alerts: Iterable[tuple[int, str]], saved: Mapping[str, Any]) -> None:
        """Open alerts (rule id, subject) from PostgreSQL; pending timers saved earlier
        (`snapshot`). Call before the first cycle."""
        for key, data in saved.items():
            rule_text, _, subject_id = key.partition("|")
            if not rule_text.isdigit() or not isinstance(data, Mapping):
                continue
            track = Track.from_json(data)
            track.firing = False  # PostgreSQL says what is open
            self.tracks.setdefault(int(rule_text), {})[subject_id] = track
            downs = data.get("downs")
            if isinstance(downs, list):
                times = deque(float(t) for t in downs if isinstance(t, (int, float)))
                self.downs.setdefault(int(rule_text), {})[subject_id] = times
        for rule_id, subject in open_alerts:
            self.tracks.setdefault(rule_id, {}).setdefault(subject.partition(":")[2], Track()).firing = True

    def snapshot(self) -> dict[str, Any]:
        """The tracks and flap counts worth keeping across a restart, as JSON-ready data."""
        out: dict[str, Any] = {}
        for rule_id, tracks in self.tracks.items():
            for subject_id, track in tracks.items():
                if not track.idle:
                    out[f"{rule_id}|{subject_id}"] = track.to_json()
        for rule_id, by_customer in self.downs.items():
            for customer_id, times in by_customer.items():
                if times:
                    entry = out.setdefault(f"{rule_id}|{customer_id}", Track().to_json())
                    entry["downs"] = list(times)
        return out

    # -- the cycle --------------------------------------------------------------------------

    def evaluate_cycle(
        self,
        rates: Mapping[str, tuple[int, int]],
        customers: Mapping[str, Any],
        total_download_bps: int,
        now: float,
    ) -> list[Transition]:
        """One cycle: `rates` customer id -> (download, upload) bps; `customers` customer
        id -> CustomerMeta-like (name, username, package speeds)."""
        self.cycle += 1
        began = self.last_cycle_at
        if began is None or not 0 < now - began <= MAX_RATE_SPAN:
            began = now  # no span to count from (the first cycle, or a long pause)
        self.last_cycle_at = now
        out: list[Transition] = []
        for rule in self.rules:
            if rule.kind is AlertKind.UTILIZATION:
                self._utilization(rule, rates, customers, now, began, out)
            elif rule.kind is AlertKind.ROUTER_TOTAL:
                self._router_total(rule, total_download_bps, now, began, out)
            elif rule.kind is AlertKind.SESSION_FLAPS:
                self._flaps_expire(rule, customers, now, out)
        return out

    def _utilization(
        self,
        rule: RuleSpec,
        rates: Mapping[str, tuple[int, int]],
        customers: Mapping[str, Any],
        now: float,
        began: float,
        out: list[Transition],
    ) -> None:
        params = rule.params
        upload = params["direction"] == "upload"
        threshold = float(params["threshold_pct"])
        clear_below = threshold - BAND_POINTS
        for_s = rule.for_s
        tracks = self.tracks.setdefault(rule.id, {})
        cycle = self.cycle
        router_id = self.router_id
        whole = rule.scope_kind == "all" or rule.scope_kind == "router"
        checks = 0
        for customer_id, rate in rates.items():
            if not whole and not rule.covers(customer_id, router_id):
                continue
            meta = customers.get(customer_id)
            if meta is None:
                continue
            plan = meta.package_upload_bps if upload else meta.package_download_bps
            if not plan:
                continue
            checks += 1
            pct = 100.0 * (rate[1] if upload else rate[0]) / plan
            track = tracks.get(customer_id)
            if track is None:
                if pct < threshold:
                    continue  # the common case: nothing holds, nothing allocated
                track = tracks[customer_id] = Track()
            track.seen, track.value = cycle, pct
            edge = step(track, pct >= threshold, pct < clear_below, now, for_s, self.resolve_s, began)
            if edge is not None:
                out.append(self._utilization_transition(edge, rule, customer_id, meta, pct, threshold, now))
            if track.idle:
                del tracks[customer_id]
        # A subject with a track but no rate this cycle (its session went away): 0 %.
        for customer_id in [c for c, t in tracks.items() if t.seen != cycle]:
            track = tracks[customer_id]
            track.seen, track.value = cycle, 0.0
            edge = step(track, False, True, now, for_s, self.resolve_s)
            if edge is not None:
                meta = customers.get(customer_id)
                out.append(self._utilization_transition(edge, rule, customer_id, meta, 0.0, threshold, now))
            if track.idle:
                del tracks[customer_id]
        self.checks[rule.kind.value] = self.checks.get(rule.kind.value, 0) + checks

    def _utilization_transition(
        self,
        edge: Edge,
        rule: RuleSpec,
        customer_id: str,
        meta: Any,
        pct: float,
        threshold: float,
        now: float,
    ) -> Transition:
        direction = rule.params["direction"]
        name = meta.customer_name if meta is not None else customer_id
        if edge == FIRE:
            summary = f"{name}: {direction} at {pct:.0f} % of plan for {_minutes(rule.for_s)}"
        else:
            summary = f"{name}: {direction} back to {pct:.0f} % of plan"
        values = {
            "value": round(pct, 2),
            "threshold": threshold,
            "for_s": rule.for_s,
            "direction": direction,
        }
        return Transition(
            edge,
            rule,
            f"customer:{customer_id}",
            customer_id,
            self.router_id,
            round(pct, 2),
            threshold,
            values,
            summary,
            now,
        )

    def _router_total(
        self, rule: RuleSpec, total: int, now: float, began: float, out: list[Transition]
    ) -> None:
        threshold = float(rule.params["threshold_bps"])
        tracks = self.tracks.setdefault(rule.id, {})
        track = tracks.get(self.router_id)
        self.checks[rule.kind.value] = self.checks.get(rule.kind.value, 0) + 1
        if track is None:
            if total < threshold:
                return
            track = tracks[self.router_id] = Track()
        track.seen, track.value = self.cycle, float(total)
        edge = step(
            track,
            total >= threshold,
            total < threshold * (1 - BAND_FRACTION),
            now,
            rule.for_s,
            self.resolve_s,
            began,
        )
        if edge is not None:
            if edge == FIRE:
                summary = f"router {self.router_id}: customers total {_bps(total)} for {_minutes(rule.for_s)}"
            else:
                summary = f"router {self.router_id}: customers total back to {_bps(total)}"
            values = {
                "value": float(total),
                "threshold": threshold,
                "for_s": rule.for_s,
                "direction": "download",
            }
            out.append(
                Transition(
                    edge,
                    rule,
                    f"router:{self.router_id}",
                    None,
                    self.router_id,
                    float(total),
                    threshold,
                    values,
                    summary,
                    now,
                )
            )
        if track.idle:
            del tracks[self.router_id]

    # -- session flaps --------------------------------------------------------------------------

    def session_down(self, customer_id: str, meta: Any, now: float) -> list[Transition]:
        """A known customer's session went down: count it under every flap rule covering them."""
        out: list[Transition] = []
        for rule in self.rules:
            if rule.kind is not AlertKind.SESSION_FLAPS or not rule.covers(customer_id, self.router_id):
                continue
            times = self.downs.setdefault(rule.id, {}).setdefault(customer_id, deque())
            times.append(now)
            self._flap_check(rule, customer_id, meta, times, now, out)
        return out

    def _flaps_expire(
        self, rule: RuleSpec, customers: Mapping[str, Any], now: float, out: list[Transition]
    ) -> None:
        """Once a cycle: let counts age out of the window, and resolve what went quiet."""
        by_customer = self.downs.get(rule.id)
        if not by_customer:
            tracks = self.tracks.get(rule.id)
            if not tracks:
                return
            by_customer = self.downs.setdefault(rule.id, {})
            for customer_id in tracks:
                by_customer.setdefault(customer_id, deque())
        for customer_id in list(by_customer):
            times = by_customer[customer_id]
            self._flap_check(rule, customer_id, customers.get(customer_id), times, now, out)
            if not times and customer_id not in self.tracks.get(rule.id, {}):
                del by_customer[customer_id]

    def _flap_check(
        self,
        rule: RuleSpec,
        customer_id: str,
        meta: Any,
        times: deque[float],
        now: float,
        out: list[Transition],
    ) -> None:
        window = 60.0 * float(rule.params["window_min"])
        while times and times[0] <= now - window:
            times.popleft()
        count = int(rule.params["count"])
        n = len(times)
        self.checks[rule.kind.value] = self.checks.get(rule.kind.value, 0) + 1
        tracks = self.tracks.setdefault(rule.id, {})
        track = tracks.get(customer_id)
        if track is None:
            if n < count:
                return
            track = tracks[customer_id] = Track()
        track.seen, track.value = self.cycle, float(n)
        # Fires at once (the window is its duration); clear at half the count or fewer.
        edge = step(track, n >= count, n <= count // 2, now, 0.0, self.resolve_s)
        if edge is not None:
            name = meta.customer_name if meta is not None else customer_id
            minutes = int(rule.params["window_min"])
            if edge == FIRE:
                summary = f"{name}: session dropped {n} times in {minutes} min"
            else:
                summary = f"{name}: session steady again ({n} drops in {minutes} min)"
            values = {"value": float(n), "threshold": float(count), "window_min": minutes}
            out.append(
                Transition(
                    edge,
                    rule,
                    f"customer:{customer_id}",
                    customer_id,
                    self.router_id,
                    float(n),
                    float(count),
                    values,
                    summary,
                    now,
                )
            )
        if track.idle:
            del tracks[customer_id]

    def _transition(
        self,
        edge: Edge,
        rule: RuleSpec,
        subject_id: str,
        value: float | None,
        threshold: float | None,
        now: float,
        why: str,
    ) -> Transition:
        router_subject = rule.kind is AlertKind.ROUTER_TOTAL
        subject = f"router:{subject_id}" if router_subject else f"customer:{subject_id}"
        return Transition(
            edge,
            rule,
            subject,
            None if router_subject else subject_id,
            self.router_id,
            value,
            threshold,
            {"reason": why},
            f"{rule.name}: {why}",
            now,
        )


# -- rtt: a monitor's ping ------------------------------------------------------------------------


@dataclass
class RttWindow:
    """One monitored customer's probes over the rule's window: (time, rtt ms or None=lost)."""

    window_s: float
    probes: deque[tuple[float, float | None]] = field(default_factory=deque)

    def add(self, now: float, rtt_ms: float | None) -> None:
        self.probes.append((now, rtt_ms))
        self.trim(now)

    def trim(self, now: float) -> None:
        while self.probes and self.probes[0][0] <= now - self.window_s:
            self.probes.popleft()

    def stats(self) -> tuple[float | None, float | None]:
        """(p95 of the answered probes' RTT in ms, loss %) over the window; None each
        while the window holds fewer than RTT_MIN_PROBES probes."""
        n = len(self.probes)
        if n < RTT_MIN_PROBES:
            return None, None
        answered = sorted(r for _, r in self.probes if r is not None)
        loss = 100.0 * (n - len(answered)) / n
        if not answered:
            return None, loss
        index = max(0, math.ceil(0.95 * len(answered)) - 1)
        return answered[index], loss


class RttEvaluator:
    """The rtt rules over one monitored customer's ping replies (tasks/monitor.py)."""

    def __init__(self, customer_id: str, router_id: str, customer_name: str, resolve_s: float) -> None:
        self.customer_id = customer_id
        self.router_id = router_id
        self.customer_name = customer_name
        self.resolve_s = resolve_s
        self.rules: tuple[RuleSpec, ...] = ()
        self.windows: dict[int, RttWindow] = {}
        self.tracks: dict[int, Track] = {}

    def set_rules(self, rules: Iterable[RuleSpec]) -> None:
        self.rules = tuple(
            r for r in rules if r.kind is AlertKind.RTT and r.covers(self.customer_id, self.router_id)
        )
        kept = {r.id for r in self.rules}
        for rule_id in [r for r in self.windows if r not in kept]:
            del self.windows[rule_id]
        for rule_id in [r for r in self.tracks if r not in kept and not self.tracks[r].firing]:
            del self.tracks[rule_id]

    def restore(self, open_rule_ids: Iterable[int]) -> None:
        for rule_id in open_rule_ids:
            self.tracks.setdefault(rule_id, Track()).firing = True

    def probe(self, rtt_ms: float | None, now: float) -> list[Transition]:
        out: list[Transition] = []
        for rule in self.rules:
            window = self.windows.get(rule.id)
            if window is None:
                window = self.windows[rule.id] = RttWindow(float(rule.params["window_s"]))
            window.add(now, rtt_ms)
            p95, loss = window.stats()
            if loss is None:
                continue
            p95_limit = rule.params.get("p95_ms")
            loss_limit = rule.params.get("loss_pct")
            on = (p95_limit is not None and p95 is not None and p95 >= p95_limit) or (
                loss_limit is not None and loss >= loss_limit
            )
            clear = (p95_limit is None or p95 is None or p95 < p95_limit * (1 - BAND_FRACTION)) and (
                loss_limit is None or loss < loss_limit - BAND_POINTS or loss == 0.0
            )
            track = self.tracks.get(rule.id)
            if track is None:
                if not on:
                    continue
                track = self.tracks[rule.id] = Track()
            edge = step(track, on, clear and not on, now, 0.0, self.resolve_s)
            if edge is not None:
                out.append(self._transition(edge, rule, p95, loss, now))
            if track.idle:
                del self.tracks[rule.id]
        return out

    def _transition(
        self, edge: Edge, rule: RuleSpec, p95: float | None, loss: float, now: float
    ) -> Transition:
        p95_limit = rule.params.get("p95_ms")
        loss_limit = rule.params.get("loss_pct")
        # The number that broke (or last broke) its limit leads: p95 unless only loss did.
        by_loss = (
            p95_limit is None
            or p95 is None
            or (loss_limit is not None and loss >= loss_limit and p95 < p95_limit)
        )
        value = loss if by_loss else p95
        threshold = loss_limit if by_loss else p95_limit
        window = int(rule.params["window_s"])
        p95_text = "-" if p95 is None else f"{p95:.0f} ms"
        verb = "over" if edge == FIRE else "back under limits over"
        summary = f"{self.customer_name}: RTT p95 {p95_text}, loss {loss:.0f} % {verb} {_minutes(window)}"
        values = {
            "value": None if value is None else round(float(value), 2),
            "threshold": None if threshold is None else float(threshold),
            "p95_ms": None if p95 is None else round(p95, 2),
            "loss_pct": round(loss, 2),
            "window_s": window,
        }
        return Transition(
            edge,
            rule,
            f"customer:{self.customer_id}",
            self.customer_id,
            self.router_id,
            values["value"],
            values["threshold"],
            values,
            summary,
            now,
        )


# -- watch_offline: the reconciler's look at each router's view ----------------------------------


def watch_offline(
    rule: RuleSpec,
    router_id: str,
    track: Track,
    *,
    view_at: float | None,
    view_ok: bool,
    stale_after: float,
    now: float,
    resolve_s: float,
) -> Transition | None:
    """One router under one watch_offline rule. `view_at`: when its watch last wrote
    the view (epoch s; None: no view at all), `view_ok` whether that view said "ok".
    The watch is offline when it has written no ok view for `stale_after` seconds;
    since then the rule's `for_s` counts (from the view's time when there is one)."""
    fresh = view_at is not None and view_ok and now - view_at <= stale_after
    if not fresh and not track.firing and track.since is None and view_at is not None:
        track.since = view_at  # the frames stopped then, not when this pass noticed
    edge = step(track, not fresh, fresh, now, rule.for_s, resolve_s)
    if edge is None:
        return None
    if edge == FIRE:
        summary = f"router {router_id}: watch offline for {_minutes(rule.for_s)}"
        value = None if view_at is None else round(now - view_at, 1)
    else:
        summary = f"router {router_id}: watch back online"
        value = 0.0
    values = {"value": value, "threshold": rule.for_s, "for_s": rule.for_s}
    return Transition(
        edge, rule, f"router:{router_id}", None, router_id, value, rule.for_s, values, summary, now
    )
