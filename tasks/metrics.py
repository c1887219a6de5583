"""What a monitors worker exposes to Prometheus, on WORKER_METRICS_PORT (0 = off).

The monitors run as threads of one worker process, so one registry in that process
sees everything: no multiprocess mode. (A prefork worker would need it; the engine
never runs monitors on prefork, see docs/architecture.md.)

Gauges that describe the present (monitors running, router connections) are read at
scrape time from the keeper and the router hub; counters are bumped where things happen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tasks import runtime
from tasks.hub import current_hub
from tasks.semaphore import MONITORS

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()

SAMPLES_PUBLISHED = Counter(
    "mtmon_worker_samples_published_total",
    "Traffic samples appended to the streams by this worker",
    registry=REGISTRY,
)
PUBLISH_FAILURES = Counter(
    "mtmon_worker_publish_failures_total",
    "Publishes that failed, by reason (redis, redis-oom: Redis at maxmemory, fenced-out, unusable-row)",
    ["reason"],
    registry=REGISTRY,
)
PUBLISH_LATENCY = Histogram(
    "mtmon_worker_publish_latency_seconds",
    "From a sample read off the router connection to its stream entry acknowledged by Redis",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
RUNS = Counter(
    "mtmon_worker_monitor_runs_total",
    "Monitor runs started by this worker: first attempts and restarts (attempt > 1)",
    ["kind"],
    registry=REGISTRY,
)
STATUS_EVENTS = Counter(
    "mtmon_worker_status_events_total",
    "Status events published (started, offline, reconnecting, resumed, stopped)",
    ["type"],
    registry=REGISTRY,
)


class _PresentState(Collector):
    """Monitors running and router connections, read when Prometheus scrapes."""

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        current = runtime.existing()
        keeper = current.existing_keeper() if current is not None else None
        running = GaugeMetricFamily("mtmon_worker_monitors_running", "Monitors this worker runs now")
        monitors = [h for h in keeper.handles() if h.space is MONITORS] if keeper is not None else []
        running.add_metric([], len(monitors))
        yield running
        renewals = CounterMetricFamily(
            "mtmon_worker_lease_renewals", "Lease renewals by result (ok, lost, error)", labels=["result"]
        )
        for result, count in (keeper.renewals if keeper is not None else {}).items():
            renewals.add_metric([result], count)
        yield renewals
        writer = current.existing_state_writer() if current is not None else None
        pending = GaugeMetricFamily(
            "mtmon_worker_session_writes_pending",
            "Session-row writes waiting for PostgreSQL (retried until it answers)",
        )
        pending.add_metric([], writer.pending() if writer is not None else 0)
        yield pending
        connections = GaugeMetricFamily(
            "mtmon_worker_router_connections",
            "API connections to routers held by this worker, by router",
            labels=["router"],
        )
        hub = current_hub()
        for router, stats in (hub.stats() if hub is not None else {}).items():
            connections.add_metric([router], stats["connections"])
        yield connections


REGISTRY.register(_PresentState())


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Start the scrape endpoint (a daemon thread); a port already taken is logged, not fatal."""
    try:
        start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        log.error("worker metrics: cannot listen on port %d: %s", port, exc)
        return
    log.info("worker metrics on :%d/metrics", port)


# Alert delivery (tasks/alert_delivery.py), counted in the worker that runs the `alerts` queue.
ALERT_DELIVERIES = Counter(
    "mtmon_worker_alert_deliveries_total",
    "Webhook delivery attempts by outcome (delivered; failed: a retry is scheduled; dead: "
    "ALERT_DELIVERY_MAX_AGE passed; skipped: the delivery was done, dead or being attempted elsewhere)",
    ["outcome"],
    registry=REGISTRY,
)
ALERT_DELIVERY_LAG = Histogram(
    "mtmon_worker_alert_delivery_lag_seconds",
    "From an alert event to its webhook's 2xx answer",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
    registry=REGISTRY,
)
for _outcome in ("delivered", "failed", "dead", "skipped"):
    ALERT_DELIVERIES.labels(_outcome)  # every outcome shows, at 0 until it happens

# Alert evaluation (tasks/alert_hooks.py) in the worker that runs the watches and monitors;
# the alerts open now are the web's mtmon_alerts_firing (read from PostgreSQL).
ALERT_EVALUATIONS = Counter(
    "mtmon_worker_alert_evaluations_total",
    "Alert rule checks (one rule over one customer or router), by rule kind",
    ["kind"],
    registry=REGISTRY,
)
ALERT_TRANSITIONS = Counter(
    "mtmon_worker_alert_transitions_total",
    "Alert changes this worker made and announced (alert_firing, alert_resolved), by event",
    ["event"],
    registry=REGISTRY,
)
for _kind in ("utilization", "session_flaps", "router_total", "watch_offline", "rtt"):
    ALERT_EVALUATIONS.labels(_kind)
for _event in ("alert_firing", "alert_resolved"):
    ALERT_TRANSITIONS.labels(_event)
