"""The one place benches write their results: bench/results/<name>.json, and tables.

Every file carries when and where it was measured (host CPUs, load average at the end,
Python) beside the bench's own settings and rows, so two runs can be compared and a run
on a busy machine can be told apart from one on a quiet one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR", Path(__file__).resolve().parent / "results"))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def write_results(
    name: str, rows: Iterable[Any], *, settings: Mapping[str, Any] | None = None, **extra: Any
) -> Path:
    """Write bench/results/<name>.json (rows: dataclasses or dicts); return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host_cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        **({"settings": dict(settings)} if settings is not None else {}),
        **{k: _plain(v) for k, v in extra.items()},
        "rows": [_plain(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def table(rows: Sequence[Any], columns: Sequence[tuple[str, str]]) -> str:
    """A right-aligned text table of `columns` ((attribute or key, header)) for stdout."""

    def cell(row: Any, name: str) -> str:
        value = row.get(name) if isinstance(row, Mapping) else getattr(row, name)
        return "" if value is None else str(value)

    cells = [[label for _, label in columns]] + [[cell(r, n) for n, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(" | ".join(c.rjust(w) for c, w in zip(line, widths)))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)
