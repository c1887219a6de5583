"""Reading a Prometheus /metrics page in tests: every sample by its name and labels."""

from __future__ import annotations

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """`{'name{label=value,...}': value}` of every sample at `url` (labels sorted)."""
    text = httpx.get(url, headers=headers, timeout=5).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values
