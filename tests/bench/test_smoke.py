"""The benches still run: one tiny run of each (make bench's engine path, the naive way,
chaos with two cheap faults, the router watch beside one monitor per customer, router
affinity on two hosts). Nothing here measures: a bench that rots fails here, a slow
machine does not. Each run uses its own redis-server and results directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.process import ROOT


def run_bench(module: str, tmp_path: Path, timeout: float, **env: str) -> dict:
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULTS_DIR": str(results), "BENCH_PRIVATE_REDIS": "1", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{module} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    name = {
        "bench.engine": "engine",
        "bench.naive": "naive",
        "bench.chaos": "chaos",
        "bench.queues": "queues",
        "bench.router": "router",
        "bench.soak": "soak",
        "bench.affinity": "affinity",
    }[module]
    return json.loads((results / f"{name}.json").read_text())


def test_bench_engine_end_to_end_tiny_run(tmp_path: Path) -> None:
    data = run_bench(
        "bench.engine",
        tmp_path,
        120,
        BENCH_SIZES="4",
        BENCH_SECONDS="2",
        BENCH_SETTLE="1",
        BENCH_PROBES="1",
        BENCH_STORM="2",
        BENCH_WS_FILTERED="2",
        BENCH_WS_FILTER_SIZE="2",
    )
    (row,) = data["rows"]
    assert row["monitors"] == 4 and row["start_failures"] == 0, row["notes"]
    assert row["ws_samples_expected"] > 0 and row["ws_samples_delivered"] == row["ws_samples_expected"]
    for key in ("ws_latency_ms", "start_latency_ms", "stop_latency_ms"):
        assert row[key]["n"] > 0, key
    assert row["web_cpu_percent"] >= 0 and row["web_rss_mb"] > 0
    # 4 monitors for 2 s may round to 0 % of a core: the figures exist and are not negative
    assert row["worker_cpu_ms_per_sample"] >= 0 and row["web_cpu_ms_per_frame"] >= 0
    assert {p["process"] for p in row["processes"]} >= {"web", "control", "beat", "simulator", "redis"}
    assert row["slots_in_use_after_stop"] == 0 and row["open_sessions_after_stop"] == 0


def test_bench_naive_way_tiny_run(tmp_path: Path) -> None:
    data = run_bench("bench.naive", tmp_path, 60, BENCH_SIZES="25", BENCH_SECONDS="2")
    (row,) = data["rows"]
    # 25 logins against max-sessions 20: the router refuses the rest every second.
    assert row["router_peak_sessions"] == 20 and row["router_refused_connections_per_min"] > 0
    assert 0 < row["samples_per_s"] < 25


def test_bench_queues_tiny_run(tmp_path: Path) -> None:
    data = run_bench("bench.queues", tmp_path, 90, BENCH_QUEUE_SIZES="6", BENCH_SECONDS="2", BENCH_SETTLE="0")
    (row,) = data["rows"]
    assert row["monitors"] == row["live"] == 6 and not row["notes"], row
    assert row["samples_per_s"] > 0 and row["router_commands_per_s"] > 0 and row["worker_cpu_percent"] >= 0


def test_bench_chaos_two_cheap_faults(tmp_path: Path) -> None:
    data = run_bench("bench.chaos", tmp_path, 150, CHAOS_MONITORS="6", CHAOS_FAULTS="router-drop,web-kill")
    assert [r["fault"] for r in data["rows"]] == ["router-drop", "web-kill"]
    for row in data["rows"]:
        assert row["recovered_s"] == row["recovered_s"], row  # not NaN: every monitor produced again
        assert (
            row["lost_by_clients"],
            row["duplicate_producers"],
            row["slots_leaked"],
            row["above_cap"],
        ) == (
            0,
            0,
            0,
            0,
        ), row


def test_bench_router_watch_beside_one_monitor_per_customer_tiny_run(tmp_path: Path) -> None:
    data = run_bench(
        "bench.router",
        tmp_path,
        180,
        BENCH_ROUTER_PPPOE="40",
        BENCH_ROUTER_HOTSPOT="5",
        BENCH_ROUTER_STATIC="5",
        ROUTER_WATCH_INTERVAL="1",
        BENCH_SECONDS="5",
        BENCH_NAIVE_PPPOE="8",
        BENCH_NAIVE_QUEUE="2",
        BENCH_NAIVE_SECONDS="4",
    )
    watch, naive = data["rows"]
    assert (watch["rated"], watch["online"]) == (50, 45), watch["notes"]
    assert watch["frames"] > 0 and watch["frames_on_ws"] == watch["frames"], watch["notes"]
    assert watch["reply_to_ws_ms"]["n"] == watch["frames"] and watch["unmatched_frames"] == 0
    assert set(watch["commands"]) >= {"/interface/print", "/queue/simple/print"}
    assert watch["worker_rss_mb"] > 0 and watch["idle_worker_rss_mb"] > 0
    assert {p["process"] for p in watch["processes"]} >= {"watch worker", "idle worker", "web", "simulator"}
    assert naive["started"] == 10 and naive["samples_per_s"] > 0, naive["notes"]
    assert naive["commands"].get("/queue/simple/print", 0) > 0
    assert (naive["scale_pppoe"], naive["scale_queue"]) == (5.0, 5.0) and naive["simulator_cpu_percent"] >= 0
    assert [t["figure"] for t in data["targets"]][0] == "router commands per cycle"


def test_bench_soak_counts_loss_from_customer_streams_past_stream_maxlen(tmp_path: Path) -> None:
    # STREAM_MAXLEN 100 keeps at most about 200 entries of the combined stream (whole nodes
    # of 100 are trimmed), fewer than the 30 monitors publish in one window and its grace
    # (about 225): a loss counted from the combined stream could not be 0 here.
    data = run_bench(
        "bench.soak",
        tmp_path,
        120,
        SOAK_MONITORS="30",
        SOAK_SECONDS="14",
        SOAK_WINDOW="5",
        SOAK_WS_CLIENTS="2",
        STREAM_MAXLEN="100",
    )
    summary = data["summary"]
    assert summary["windows"] == len(data["rows"]) == 2, summary
    assert summary["router_sent"] > 2 * 30 * 4, summary
    assert (summary["lost"], summary["duplicates"], summary["seq_gaps"]) == (0, 0, 0), summary
    assert summary["ws_delivered"] == summary["ws_expected"] == 2 * summary["router_sent"], summary
    assert set(summary["rss_slope_mb_per_h"]) >= {"web", "control", "beat", "simulator", "ws-clients"}
    assert any(name.startswith("bench-mon") for name in summary["rss_slope_mb_per_h"]), summary
    assert summary["redis_plateau_mb"] > 0


def test_bench_affinity_two_hosts_kill_and_add_tiny_run(tmp_path: Path) -> None:
    # Lease TTL 3 s and reconcile 1 s: the kill's recovery takes seconds, not the
    # product's 40 s bound.
    data = run_bench(
        "bench.affinity",
        tmp_path,
        120,
        BENCH_AFFINITY_ROUTERS="2",
        BENCH_AFFINITY_PER_ROUTER="5",
        BENCH_AFFINITY_HOSTS="2",
        BENCH_AFFINITY_EXTRA="2",
        BENCH_AFFINITY_WINDOW="2",
        MONITOR_LEASE_TTL="3",
        MONITOR_RENEW_INTERVAL="0.5",
        RECONCILE_INTERVAL="1",
        AFFINITY_INTERVAL="0.5",
    )
    (row,) = data["rows"]
    assert (row["routers"], row["worker_processes"], row["cap"]) == (2, 4, 2), row
    assert set(row["sessions_max_by_router"]) == {"sim-1", "sim-2"}, row
    assert all(0 < n <= 2 for n in row["sessions_max_by_router"].values()), row
    assert row["sessions_max_after_kill"] <= 2 and row["sessions_max_after_add"] <= 2, row
    assert row["killed_monitors"] > 0 and row["recovered_s"] == row["recovered_s"], row  # not NaN
    assert (row["duplicate_producers"], row["slots_leaked"], row["running_moved"]) == (0, 0, 0), row
    assert row["new_starts"] == 4 and not row["notes"], row
    assert {p["process"] for p in row["processes"]} == {"m1@host1", "m2@host1", "m3@host2", "m4@host2"}
    assert all(p["peak_rss_mb"] > 0 for p in row["processes"]), row
