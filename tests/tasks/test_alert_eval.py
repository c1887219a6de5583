"""The pure alert evaluators: hysteresis on both edges, scopes, restarts, cost shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.enums import AlertKind
from tasks.alert_eval import (
    FIRE,
    RESOLVE,
    RouterEvaluator,
    RttEvaluator,
    RuleSpec,
    Track,
    step,
    watch_offline,
)

ROUTER = "r1"


@dataclass
class Meta:
    customer_name: str
    username: str
    package_download_bps: int | None = 10_000_000
    package_upload_bps: int | None = 2_000_000


def _rule(
    kind: AlertKind, params: dict[str, Any], scope: str = "all", rule_id: int = 1, **kw: Any
) -> RuleSpec:
    scope_kind, _, scope_id = scope.partition(":")
    return RuleSpec(rule_id, f"rule {rule_id}", kind, scope_kind, scope_id or None, params, **kw)


def _util(pct: float = 90, for_s: float = 10, direction: str = "download", **kw: Any) -> RuleSpec:
    return _rule(AlertKind.UTILIZATION, {"direction": direction, "threshold_pct": pct, "for_s": for_s}, **kw)


def _evaluator(*rules: RuleSpec, resolve_s: float = 5) -> RouterEvaluator:
    ev = RouterEvaluator(ROUTER, resolve_s)
    ev.set_rules(rules, 0.0)
    return ev


CUSTOMERS = {"c1": Meta("Budi", "budi"), "c2": Meta("Sari", "sari")}


def _run(ev: RouterEvaluator, pct_by_customer: dict[str, float], now: float) -> list[tuple[str, str]]:
    rates = {c: (int(pct * 100_000), 0) for c, pct in pct_by_customer.items()}
    return [(t.edge, t.subject) for t in ev.evaluate_cycle(rates, CUSTOMERS, 0, now)]


def test_alert_eval_step_fires_after_for_s_and_resolves_after_clear_for_resolve_s() -> None:
    track = Track()
    assert step(track, True, False, 0.0, 10, 5) is None
    assert step(track, True, False, 9.7, 10, 5) is None
    assert step(track, True, False, 9.8, 10, 5) == FIRE  # within FOR_S_SLACK: cycle jitter
    assert step(track, True, False, 11.0, 10, 5) is None  # firing: no second edge
    assert step(track, False, True, 12.0, 10, 5) is None
    assert step(track, False, False, 14.0, 10, 5) is None  # in the band: the clear timer restarts
    assert step(track, False, True, 15.0, 10, 5) is None
    assert step(track, False, True, 19.9, 10, 5) is None
    assert step(track, False, True, 20.0, 10, 5) == RESOLVE
    assert track.idle


def test_alert_eval_utilization_needs_the_condition_continuously() -> None:
    ev = _evaluator(_util(90, 10))
    assert _run(ev, {"c1": 95}, 0) == []
    assert _run(ev, {"c1": 80}, 5) == []  # dipped: the timer starts over
    assert _run(ev, {"c1": 95}, 7) == []  # the rate of 5..7: it holds from 5
    assert _run(ev, {"c1": 95}, 14) == []
    assert _run(ev, {"c1": 95}, 15) == [(FIRE, "customer:c1")]  # 10 s after 5, not after 7
    assert _run(ev, {"c1": 99}, 30) == []


def test_alert_eval_utilization_counts_from_the_cycle_start_within_the_jitter() -> None:
    ev = _evaluator(_util(90, 10))
    times = [0.0, 2.003, 3.998, 6.001, 7.999, 10.002, 11.996, 14.0]  # cycles of 2 s, jittered
    edges = [_run(ev, {"c1": 40 if t == 0.0 else 95}, t) for t in times]
    # Saturated from the reading at 0 on: fires at the cycle ending 10 s later, even a few ms short.
    assert edges.index([(FIRE, "customer:c1")]) == times.index(10.002)
    ev = _evaluator(_util(90, 10))
    assert _run(ev, {"c1": 40}, 100.0) == []
    assert _run(ev, {"c1": 95}, 130.0) == []  # a rate over a 30 s pause: counted from 130, not 100
    assert _run(ev, {"c1": 95}, 139.0) == []
    assert _run(ev, {"c1": 95}, 140.0) == [(FIRE, "customer:c1")]


def test_alert_eval_utilization_resolves_below_the_band_only() -> None:
    ev = _evaluator(_util(90, 0), resolve_s=5)
    assert _run(ev, {"c1": 95}, 0) == [(FIRE, "customer:c1")]
    assert _run(ev, {"c1": 87}, 1) == []  # below the threshold, inside the 5-point band
    assert _run(ev, {"c1": 87}, 20) == []
    assert _run(ev, {"c1": 50}, 21) == []
    assert _run(ev, {"c1": 50}, 25) == []
    assert _run(ev, {}, 26) == [(RESOLVE, "customer:c1")]  # gone from the rates: 0 %
    assert ev.tracks[1] == {}


def test_alert_eval_utilization_upload_and_scopes() -> None:
    ev = _evaluator(
        _util(50, 0, "upload", rule_id=1),
        _util(50, 0, scope="customer:c2", rule_id=2),
        _util(50, 0, scope="package:7", rule_id=3, members=frozenset({"c1"})),
        _util(50, 0, scope="router:other", rule_id=4),
    )
    rates = {"c1": (9_000_000, 1_500_000), "c2": (9_000_000, 0)}
    fired = {(t.rule.id, t.subject) for t in ev.evaluate_cycle(rates, CUSTOMERS, 0, 0.0)}
    assert fired == {(1, "customer:c1"), (2, "customer:c2"), (3, "customer:c1")}
    assert [r.id for r in ev.rules] == [1, 2, 3]  # another router's rule is not this watch's


def test_alert_eval_quiet_router_allocates_no_state() -> None:
    ev = _evaluator(_util(90, 10), _util(80, 10, "upload", rule_id=2))
    customers = {f"c{i}": Meta(f"n{i}", f"u{i}") for i in range(2000)}
    rates = {c: (1_000_000, 100_000) for c in customers}
    assert ev.evaluate_cycle(rates, customers, 0, 0.0) == []
    assert ev.tracks == {1: {}, 2: {}}
    assert ev.checks == {"utilization": 4000}


def test_alert_eval_restart_restores_open_alerts_and_pending_timers() -> None:
    ev = _evaluator(_util(90, 10))
    _run(ev, {"c1": 95}, 0)
    saved = ev.snapshot()
    assert saved == {"1|c1": {"since": 0.0, "clear_since": None, "firing": False}}
    # A new watch: c1's timer goes on; c2's alert is open in PostgreSQL.
    again = _evaluator(_util(90, 10))
    again.restore([(1, "customer:c2")], saved)
    assert _run(again, {"c1": 95, "c2": 99}, 10) == [(FIRE, "customer:c1")]  # c2 does not fire again
    assert _run(again, {"c1": 95}, 11) == []
    assert _run(again, {"c1": 95}, 16) == [(RESOLVE, "customer:c2")]  # nor is it forgotten


def test_alert_eval_rule_turned_off_resolves_its_open_alerts() -> None:
    rule = _util(90, 0)
    ev = _evaluator(rule)
    assert _run(ev, {"c1": 95}, 0) == [(FIRE, "customer:c1")]
    out = ev.set_rules([], 1.0)
    assert [(t.edge, t.subject) for t in out] == [(RESOLVE, "customer:c1")]
    assert ev.set_rules([], 2.0) == []


def test_alert_eval_router_total_with_band() -> None:
    ev = _evaluator(_rule(AlertKind.ROUTER_TOTAL, {"threshold_bps": 1000, "for_s": 2}))
    assert ev.evaluate_cycle({}, {}, 1000, 0.0) == []
    [fired] = ev.evaluate_cycle({}, {}, 1200, 2.0)
    assert (fired.edge, fired.subject, fired.customer_id, fired.value) == (
        FIRE,
        f"router:{ROUTER}",
        None,
        1200.0,
    )
    assert ev.evaluate_cycle({}, {}, 960, 3.0) == []  # inside the 5 % band
    assert ev.evaluate_cycle({}, {}, 900, 10.0) == []
    [resolved] = ev.evaluate_cycle({}, {}, 900, 15.0)
    assert resolved.edge == RESOLVE


def test_alert_eval_session_flaps_count_in_the_window() -> None:
    ev = _evaluator(_rule(AlertKind.SESSION_FLAPS, {"count": 3, "window_min": 1}), resolve_s=0)
    meta = CUSTOMERS["c1"]
    assert ev.session_down("c1", meta, 0.0) == []
    assert ev.session_down("c1", meta, 20.0) == []
    assert ev.session_down("c1", meta, 70.0) == []  # the first one left the window
    [fired] = ev.session_down("c1", meta, 71.0)
    assert (fired.edge, fired.value, fired.summary) == (FIRE, 3.0, "Budi: session dropped 3 times in 1 min")
    assert ev.evaluate_cycle({}, CUSTOMERS, 0, 100.0) == []  # 2 left: above half the count
    [resolved] = ev.evaluate_cycle({}, CUSTOMERS, 0, 130.5)  # 1 left: half the count or fewer
    assert resolved.edge == RESOLVE


def test_alert_eval_rtt_p95_and_loss_over_the_window() -> None:
    ev = RttEvaluator("c1", ROUTER, "Budi", resolve_s=2)
    ev.set_rules([_rule(AlertKind.RTT, {"p95_ms": 100, "loss_pct": 50, "window_s": 10}, scope="customer:c1")])
    out = []
    for second in range(4):
        out += ev.probe(300.0, float(second))
    assert out == []  # fewer than RTT_MIN_PROBES
    [fired] = ev.probe(300.0, 4.0)
    assert fired.edge == FIRE and fired.value == 300.0 and fired.threshold == 100
    out = []
    for second in range(5, 20):
        out += ev.probe(10.0, float(second))
    assert [t.edge for t in out] == [RESOLVE]
    lossy = []
    for second in range(20, 30):
        lossy += ev.probe(None, float(second))
    assert [(t.edge, t.value, t.threshold) for t in lossy] == [(FIRE, 50.0, 50)]  # 5 of the 10 in the window


def test_alert_eval_rtt_rule_for_another_customer_is_ignored() -> None:
    ev = RttEvaluator("c1", ROUTER, "Budi", resolve_s=2)
    ev.set_rules([_rule(AlertKind.RTT, {"p95_ms": 100, "window_s": 10}, scope="customer:c2")])
    assert ev.rules == ()


def test_alert_eval_watch_offline_counts_from_the_last_view() -> None:
    rule = _rule(AlertKind.WATCH_OFFLINE, {"for_s": 10})
    track = Track()
    args = {"stale_after": 5.0, "resolve_s": 3.0}
    assert watch_offline(rule, ROUTER, track, view_at=100.0, view_ok=True, now=103.0, **args) is None
    assert watch_offline(rule, ROUTER, track, view_at=100.0, view_ok=True, now=106.0, **args) is None
    fired = watch_offline(rule, ROUTER, track, view_at=100.0, view_ok=True, now=110.0, **args)
    assert fired is not None and fired.edge == FIRE and fired.subject == f"router:{ROUTER}"
    assert watch_offline(rule, ROUTER, track, view_at=111.0, view_ok=True, now=112.0, **args) is None
    resolved = watch_offline(rule, ROUTER, track, view_at=114.0, view_ok=True, now=115.0, **args)
    assert resolved is not None and resolved.edge == RESOLVE
    # No view at all: counted from the first look; an offline view (router unreachable) too.
    fresh = Track()
    assert watch_offline(rule, ROUTER, fresh, view_at=None, view_ok=False, now=200.0, **args) is None
    assert watch_offline(rule, ROUTER, fresh, view_at=None, view_ok=False, now=210.0, **args) is not None
