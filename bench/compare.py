"""Benchmark: `make bench` for two versions of the code, side by side (`make bench-compare`).

A change is only faster if it is faster on the same machine, at the same hour, under the
same load: figures from two separate runs differ by a quarter on the same code
(docs/scaling.md). So this runs both versions in ONE run, alternating:

- base: the git ref BENCH_BASE (default HEAD, i.e. the last commit against the working
  tree), checked out detached into var/compare/<sha> (a git worktree, kept for the next
  run);
- current: this checkout, as it is (uncommitted changes included).

BENCH_ROUNDS (default 2) rounds of each, in the order base, current, current, base, base,
... so a machine that slows down or speeds up during the run weighs on both sides alike.
Each round is a whole `python -m bench.engine` (BENCH_SIZES, BENCH_SECONDS and the rest
of its environment apply to both sides) that writes its own engine.json; the table shows
each figure's median over the rounds for both sides and the change. Writes
bench/results/compare.json with every round's rows.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.results import RESULTS_DIR, table, write_results
from harness.process import ROOT

BASE = os.environ.get("BENCH_BASE", "HEAD")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CHECKOUTS = ROOT / "var" / "compare"

Figure = Callable[[dict[str, Any]], float | None]


def _key(name: str) -> Figure:
    return lambda row: row.get(name)


def _pct(name: str, pct: str) -> Figure:
    return lambda row: (row.get(name) or {}).get(pct)


# (label, how to read it from an engine.json row)
FIGURES: list[tuple[str, Figure]] = [
    ("lost", _key("lost")),
    ("router > stream p99 ms", _key("latency_p99_ms")),
    ("router > WebSocket p50 ms", _pct("ws_latency_ms", "p50")),
    ("router > WebSocket p99 ms", _pct("ws_latency_ms", "p99")),
    ("worker CPU ms per sample", _key("worker_cpu_ms_per_sample")),
    ("web CPU ms per frame per client", _key("web_cpu_ms_per_frame")),
    ("worker CPU % (all processes)", _key("worker_cpu_percent")),
    ("web CPU %", _key("web_cpu_percent")),
    ("worker RSS MB", _key("worker_rss_mb")),
    ("burst: all live s", _key("burst_live_s")),
    ("burst: the calls s", _key("burst_start_calls_s")),
    ("start p50 ms", _pct("start_latency_ms", "p50")),
    ("stop p50 ms", _pct("stop_latency_ms", "p50")),
    ("storm: router > WebSocket p99 before ms", _pct("storm_ws_before_ms", "p99")),
    ("storm: router > WebSocket p99 during ms", _pct("storm_ws_during_ms", "p99")),
    ("storm: router > stream p99 during ms", _pct("storm_stream_during_ms", "p99")),
]


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def base_checkout(ref: str) -> tuple[str, Path]:
    """The base's commit and a detached worktree of it (made once, reused)."""
    sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    path = CHECKOUTS / sha[:12]
    if not (path / "bench" / "engine.py").exists():
        CHECKOUTS.mkdir(parents=True, exist_ok=True)
        _git("worktree", "prune")
        _git("worktree", "add", "--detach", "--force", str(path), sha)
    return sha, path


def run_engine(checkout: Path, results_dir: Path) -> list[dict[str, Any]]:
    """One whole `make bench` of the code in `checkout`; its rows."""
    results_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_RESULTS_DIR": str(results_dir)}
    # cwd first on sys.path: the checkout's own packages, not this one's editable install
    subprocess.run([sys.executable, "-m", "bench.engine"], cwd=checkout, env=env, check=True)
    rows: list[dict[str, Any]] = json.loads((results_dir / "engine.json").read_text())["rows"]
    return rows


def order(rounds: int) -> list[str]:
    """base, current, current, base, ...: each side as often first as second."""
    pairs = [("base", "current") if n % 2 == 0 else ("current", "base") for n in range(rounds)]
    return [side for pair in pairs for side in pair]


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _change(base: float | None, current: float | None) -> str:
    if base is None or current is None:
        return ""
    if base == 0:
        return "" if current == 0 else f"+{current:g}"
    return f"{(current - base) / base * 100:+.0f} %"


def compare(runs: dict[str, list[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Per size and figure: the median of each side's rounds and the change."""
    lines: list[dict[str, Any]] = []
    sizes = [f"{r['monitors']}x{r['workers']}" for r in runs["current"][0]]
    for i, size in enumerate(sizes):
        for label, read in FIGURES:
            base = _median([read(rows[i]) for rows in runs["base"] if i < len(rows)])
            current = _median([read(rows[i]) for rows in runs["current"] if i < len(rows)])
            lines.append(
                {
                    "K": size,
                    "figure": label,
                    "base": base,
                    "current": current,
                    "change": _change(base, current),
                }
            )
    return lines


def main() -> int:
    if ROUNDS < 1:
        print("BENCH_ROUNDS must be at least 1", file=sys.stderr)
        return 2
    sha, base_path = base_checkout(BASE)
    sides = {"base": base_path, "current": ROOT}
    runs: dict[str, list[list[dict[str, Any]]]] = {"base": [], "current": []}
    for n, side in enumerate(order(ROUNDS)):
        print(f"round {n + 1}/{2 * ROUNDS}: {side}", file=sys.stderr, flush=True)
        runs[side].append(run_engine(sides[side], RESULTS_DIR / "compare" / f"{n + 1}-{side}"))
    lines = compare(runs)
    print(f"\nbase {BASE} ({sha[:12]}) beside the working tree, median of {ROUNDS} round(s) each\n")
    print(
        table(
            lines,
            [
                ("K", "K"),
                ("figure", "figure"),
                ("base", "base"),
                ("current", "current"),
                ("change", "change"),
            ],
        )
    )
    head = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    path = write_results(
        "compare",
        lines,
        settings={
            "base": BASE,
            "base_commit": sha,
            "current_commit": head,
            "current_dirty": dirty,
            "rounds": ROUNDS,
        },
        runs=runs,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
