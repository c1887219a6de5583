"""The session report's accumulator (tasks/report.py): numbers, verdicts, the rebuild
from a stream, and the flat form the table and the CSV share."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import redis

from tasks.keys import customer_stream
from tasks.message import decode_entry
from tasks.report import (
    LOSS_WITHOUT_LOAD,
    SATURATED,
    SessionReport,
    flatten,
    nest,
    report_from_stream,
)
from tests.tasks.report_entries import PLANNED, SESSION, UNPLANNED, nearest_rank, probe, sample, started

START = datetime(2026, 12, 14, 10, 0, 0, tzinfo=UTC)


def _report(**kwargs: object) -> SessionReport:
    return SessionReport(SESSION, 1.0, rtt_rise_ms=30, min_probes=5, **kwargs)  # type: ignore[arg-type]


def test_report_traffic_peak_average_p95_bytes_and_time_at_plan() -> None:
    downs = [1_000_000 * (i % 11) for i in range(40)]  # 0..10 Mbps against a 10 Mbps plan
    ups = [123_457 * i for i in range(40)]
    report = _report()
    for seq, (down, up) in enumerate(zip(downs, ups)):
        report.observe(sample(down, up, seq))
    out = report.finish(START + timedelta(seconds=42.4), "stopped by api", started_at=START)
    assert out["download"] == {
        "peak_bps": 10_000_000,
        "avg_bps": round(sum(downs) / 40),
        "p95_bps": nearest_rank(downs, 95),
        "bytes": round(sum(downs) / 8),
        "at_plan_s": float(sum(1 for d in downs if d >= 9_000_000)),
    }
    assert out["upload"]["peak_bps"] == max(ups)
    assert out["upload"]["p95_bps"] == nearest_rank(ups, 95)
    assert out["upload"]["at_plan_s"] == float(sum(1 for u in ups if u >= 4_500_000))
    assert (out["samples"], out["duration_s"], out["missing_s"]) == (40, 42.4, 2)
    assert out["started_at"] == "2026-12-14T10:00:00.000Z"
    assert out["ended_at"] == "2026-12-14T10:00:42.400Z"
    assert (out["stop_reason"], out["partial"], out["verdict"]) == ("stopped by api", False, None)
    assert (out["username"], out["router"], out["interface"]) == ("alice", "core-1", "<pppoe-alice>")
    assert (out["package"], out["package_download_bps"]) == ("home-10M", 10_000_000)
    assert out["rtt"]["probes"] == 0 and out["rtt"]["loss_pct"] is None


def test_report_interval_scales_bytes_time_at_plan_and_missing_seconds() -> None:
    report = SessionReport(SESSION, 2.0)
    for seq in range(10):
        report.observe(sample(10_000_000, 0, seq))
    out = report.finish(START + timedelta(seconds=30), "max-duration", started_at=START)
    assert out["download"]["bytes"] == 10 * 10_000_000 * 2 // 8
    assert out["download"]["at_plan_s"] == 20.0
    assert out["missing_s"] == 10  # 15 samples expected, 10 came: 5 × 2 s


def test_report_p95_is_exact_within_float32_for_large_rates() -> None:
    values = [987_654_321 + 7 * i for i in range(100)]
    report = _report()
    for seq, value in enumerate(values):
        report.observe(sample(value, value, seq))
    p95 = report.finish(START, "x", started_at=START)["download"]["p95_bps"]
    assert abs(p95 - nearest_rank(values, 95)) <= nearest_rank(values, 95) * 2**-23


def test_report_decoded_and_flat_entries_give_the_same_report() -> None:
    flat, decoded = _report(), _report()
    entries = [
        sample(2_000_000, 100_000, 0),
        probe(12.5),
        sample(9_500_000, 100_000, 1),
        probe(None, "timeout"),
    ]
    for i, entry in enumerate(entries):
        flat.observe(entry)
        decoded.observe(decode_entry(f"1-{i}", entry))
    end = START + timedelta(seconds=2)
    assert flat.finish(end, "r", started_at=START) == decoded.finish(end, "r", started_at=START)


def test_report_status_and_unknown_entries_are_not_counted() -> None:
    report = _report()
    report.observe(started())
    report.observe({"type": "top", "download_bps": "5"})
    report.observe(sample(1_000, 2_000, 1))
    out = report.finish(START + timedelta(seconds=1), "r", started_at=START)
    assert (out["samples"], out["download"]["peak_bps"], out["rtt"]["probes"]) == (1, 1_000, 0)


def test_report_rtt_split_by_the_latest_sample_and_saturated_verdict() -> None:
    report = _report()
    idle_rtts = [8.0, 9.0, 10.0, 11.0, 12.0, 9.5]
    load_rtts = [150.0, 180.0, 170.0, 160.0, 200.0]
    seq = 0
    report.observe(probe(50.0))  # before any sample: neither idle nor load
    report.observe(sample(100_000, 50_000, seq))  # 1 % of plan: idle
    for rtt in idle_rtts:
        report.observe(probe(rtt))
    report.observe(sample(5_000_000, 100_000, seq := seq + 1))  # 50 %: between
    report.observe(probe(70.0))
    report.observe(sample(9_000_000, 100_000, seq := seq + 1))  # 90 % of download: load
    for rtt in load_rtts:
        report.observe(probe(rtt))
    out = report.finish(START + timedelta(seconds=3), "r", started_at=START)
    rtt = out["rtt"]
    everything = [50.0, *idle_rtts, 70.0, *load_rtts]
    assert (rtt["probes"], rtt["answered"], rtt["loss_pct"]) == (13, 13, 0.0)
    assert rtt["median_ms"] == statistics.median(everything)
    assert rtt["p95_ms"] == nearest_rank(everything, 95)
    assert rtt["idle_median_ms"] == statistics.median(idle_rtts)
    assert rtt["idle_p95_ms"] == nearest_rank(idle_rtts, 95)
    assert rtt["load_median_ms"] == statistics.median(load_rtts)
    assert rtt["load_p95_ms"] == nearest_rank(load_rtts, 95)
    assert out["verdict"] == SATURATED


def test_report_saturated_needs_enough_probes_and_a_rise_above_the_threshold() -> None:
    few = _report()
    few.observe(sample(0, 0, 0))
    for _ in range(5):
        few.observe(probe(10.0))
    few.observe(sample(10_000_000, 0, 1))
    for _ in range(4):  # one short of DIAG_MIN_PROBES under load
        few.observe(probe(300.0))
    assert few.finish(START, "r", started_at=START)["verdict"] is None
    flat = _report()
    flat.observe(sample(0, 0, 0))
    for _ in range(5):
        flat.observe(probe(10.0))
    flat.observe(sample(10_000_000, 0, 1))
    for _ in range(5):
        flat.observe(probe(40.0))  # a rise of exactly 30 ms: not more than the threshold
    assert flat.finish(START, "r", started_at=START)["verdict"] is None


def test_report_loss_while_idle_is_loss_without_load_and_loss_under_load_is_not() -> None:
    idle = _report()
    idle.observe(sample(100_000, 10_000, 0))
    idle.observe(probe(9.0))
    idle.observe(probe(None, "timeout"))
    out = idle.finish(START, "r", started_at=START)
    assert (out["rtt"]["probes"], out["rtt"]["answered"], out["rtt"]["loss_pct"]) == (2, 1, 50.0)
    assert out["verdict"] == LOSS_WITHOUT_LOAD
    busy = _report()
    busy.observe(sample(9_000_000, 10_000, 0))
    busy.observe(probe(None, "host unreachable"))
    assert busy.finish(START, "r", started_at=START)["verdict"] is None


def test_report_without_package_has_no_time_at_plan_and_no_verdict() -> None:
    report = _report()
    report.observe(sample(5_000, 1_000, 0, meta=UNPLANNED))
    report.observe(probe(None, "timeout", meta=UNPLANNED))
    out = report.finish(START + timedelta(seconds=1), "r", started_at=START)
    assert out["download"]["at_plan_s"] is None and out["upload"]["at_plan_s"] is None
    assert (out["package"], out["verdict"], out["username"]) == (None, None, "bob")


def test_report_without_samples_is_empty_but_whole() -> None:
    report = _report(identity={"customer_id": PLANNED.customer_id, "username": "alice"})
    out = report.finish(START + timedelta(seconds=5), "stopped", started_at=START)
    assert out["samples"] == 0 and out["missing_s"] == 5
    assert out["download"] == {
        "peak_bps": None,
        "avg_bps": None,
        "p95_bps": None,
        "bytes": 0,
        "at_plan_s": None,
    }
    assert out["customer_id"] == PLANNED.customer_id


def test_report_flatten_and_nest_are_inverse_with_csv_names() -> None:
    report = _report()
    report.observe(sample(1_000, 2_000, 0))
    out = report.finish(START + timedelta(seconds=1), "r", started_at=START)
    flat = flatten(out)
    assert flat["download_peak_bps"] == 1_000 and flat["rtt_median_ms"] is None
    assert not any(isinstance(v, dict) for v in flat.values())
    assert nest(flat) == out


def _add(client: redis.Redis, entries: list[dict[str, str]]) -> None:
    for entry in entries:
        client.xadd(customer_stream(PLANNED.customer_id), entry)  # type: ignore[arg-type]


def _session(n: int) -> list[dict[str, str]]:
    entries = [started()]
    for seq in range(1, n + 1):
        entries.append(sample(1_000_000 * seq, 1_000 * seq, seq))
        entries.append(probe(float(seq)))
    return entries


def test_report_from_stream_rebuilds_the_session_across_pages(redis_client: redis.Redis) -> None:
    other = [sample(99_000_000, 0, 5, session_id="ffffffff-0000-4000-8000-00000000000f")]
    _add(redis_client, [*other, *_session(7), *other])
    rebuilt = report_from_stream(redis_client, PLANNED.customer_id, SESSION, page=3)
    live = _report()
    for entry in _session(7):
        live.observe(entry)
    end = START + timedelta(seconds=8)
    assert rebuilt.finish(end, "r", started_at=START) == live.finish(end, "r", started_at=START)
    assert rebuilt.partial is False and rebuilt.samples == 7


def test_report_from_stream_is_partial_when_the_start_expired(redis_client: redis.Redis) -> None:
    _add(redis_client, _session(6)[3:])  # the `started` event and the first sample are gone
    rebuilt = report_from_stream(redis_client, PLANNED.customer_id, SESSION)
    out = rebuilt.finish(START + timedelta(seconds=6), "r", started_at=START)
    assert out["partial"] is True and out["samples"] == 5


def test_report_from_stream_is_partial_on_a_seq_gap_or_a_later_attempts_start(
    redis_client: redis.Redis,
) -> None:
    entries = _session(6)
    del entries[5]  # the sample with seq 3
    _add(redis_client, entries)
    assert report_from_stream(redis_client, PLANNED.customer_id, SESSION).partial is True
    redis_client.flushdb()
    # A second attempt whose seq restarted at 0 (Redis was flushed): not the session's start.
    _add(redis_client, [started(attempt=2), sample(1, 1, 1)])
    assert report_from_stream(redis_client, PLANNED.customer_id, SESSION).partial is True
    redis_client.flushdb()
    assert report_from_stream(redis_client, PLANNED.customer_id, SESSION).partial is True  # nothing left


def test_report_from_stream_continues_over_a_second_attempt(redis_client: redis.Redis) -> None:
    first = _session(3)  # seq 0..3
    second = [started(seq=4, attempt=2, fence=2), sample(5, 5, 5, fence=2)]
    unfenced_stop = {**started(), "type": "stopped", "fence": "", "reason": "stopped", "seq": "0"}
    _add(redis_client, [*first, *second, unfenced_stop])
    rebuilt = report_from_stream(redis_client, PLANNED.customer_id, SESSION)
    assert rebuilt.partial is False and rebuilt.samples == 4
