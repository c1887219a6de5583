"""bench/compare.py's arithmetic: the order of the rounds and the side-by-side table.
(The engine runs it alternates are the engine bench's own, smoke-tested in test_smoke.)"""

from __future__ import annotations

from typing import Any

from bench.compare import compare, order


def _row(**figures: Any) -> dict[str, Any]:
    return {"monitors": 1000, "workers": 1, **figures}


def test_compare_order_puts_each_side_first_as_often_as_second() -> None:
    assert order(1) == ["base", "current"]
    assert order(2) == ["base", "current", "current", "base"]
    sides = order(3)
    assert sides.count("base") == sides.count("current") == 3


def test_compare_takes_each_sides_median_and_the_change() -> None:
    runs = {
        "base": [
            [_row(worker_cpu_ms_per_sample=0.4)],
            [_row(worker_cpu_ms_per_sample=0.5)],
            [_row(worker_cpu_ms_per_sample=9)],
        ],
        "current": [
            [_row(worker_cpu_ms_per_sample=0.2)],
            [_row(worker_cpu_ms_per_sample=0.25)],
            [_row(worker_cpu_ms_per_sample=0.3)],
        ],
    }
    (line,) = [x for x in compare(runs) if x["figure"] == "worker CPU ms per sample"]
    assert line == {
        "K": "1000x1",
        "figure": "worker CPU ms per sample",
        "base": 0.5,
        "current": 0.25,
        "change": "-50 %",
    }


def test_compare_reads_percentiles_and_leaves_figures_a_side_lacks_blank() -> None:
    runs = {
        "base": [[_row(ws_latency_ms={"p50": 10.0, "p99": 20.0})]],  # an older bench: no CPU per sample
        "current": [[_row(ws_latency_ms={"p50": 9.0, "p99": 15.0}, worker_cpu_ms_per_sample=0.2, lost=0)]],
    }
    lines = {x["figure"]: x for x in compare(runs)}
    assert lines["router > WebSocket p99 ms"]["base"] == 20.0
    assert lines["router > WebSocket p99 ms"]["change"] == "-25 %"
    assert (
        lines["worker CPU ms per sample"]["base"] is None
        and lines["worker CPU ms per sample"]["change"] == ""
    )
    assert lines["lost"]["current"] == 0 and lines["lost"]["base"] is None
