"""What the web process exposes at GET /metrics (Prometheus text format).

One registry per app (not the process-global one), so several apps in one process
(tests) never collide. Counters are bumped where things happen (requests, starts,
stops, refusals, frames sent, slow clients); the present (monitors running, free slots,
WebSocket clients) is read when Prometheus scrapes. The monitors workers expose their
own metrics on WORKER_METRICS_PORT (tasks/metrics.py): two scrape targets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.enums import AlertKind
from settings import Settings
from tasks import runtime, sessions
from tasks.alerts import alert_counts
from web.relay import Relay

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class WebMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mtmon_http_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mtmon_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.starts = Counter(
            "mtmon_monitor_starts_total",
            "Start requests answered with success (started, already)",
            ["result"],
            registry=r,
        )
        self.stops = Counter("mtmon_monitor_stops_total", "Stop requests answered with success", registry=r)
        self.refusals = Counter(
            "mtmon_monitor_refusals_total",
            "Start and stop requests refused, by error code",
            ["code"],
            registry=r,
        )
        self.frames_sent = Counter(
            "mtmon_ws_frames_sent_total", "Entries sent to WebSocket clients", registry=r
        )
        self.ws_connections = Counter(
            "mtmon_ws_connections_total", "WebSocket connections accepted", registry=r
        )
        self.ws_refused = Counter(
            "mtmon_ws_refused_total", "WebSocket handshakes refused, by HTTP status", ["status"], registry=r
        )
        self.ws_closed_slow = Counter(
            "mtmon_ws_clients_closed_slow_total",
            "WebSocket clients closed for falling behind (1013)",
            registry=r,
        )
        self.alert_transitions = Counter(
            "mtmon_alert_transitions_total",
            "Alert changes made through the API (alert_acknowledged), by event",
            ["event"],
            registry=r,
        )
        self.alert_transitions.labels("alert_acknowledged")
        self.relay_lag = Histogram(
            "mtmon_relay_lag_seconds",
            "From an entry's stream id (appended by Redis) to the relay reading it",
            buckets=LAG_BUCKETS,
            registry=r,
        )

    def watch(self, relay: Relay, settings: Settings) -> None:
        """Read the present from the relay and the semaphore at scrape time."""
        self.registry.register(_Present(relay, settings))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Present(Collector):
    def __init__(self, relay: Relay, settings: Settings) -> None:
        self.relay = relay
        self.settings = settings

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        clients = GaugeMetricFamily("mtmon_ws_clients", "WebSocket clients connected now")
        clients.add_metric([], self.relay.subscribers)
        yield clients
        read = CounterMetricFamily("mtmon_relay_entries_read", "Stream entries the relay read from Redis")
        read.add_metric([], self.relay.entries_read)
        yield read
        restarts = CounterMetricFamily("mtmon_relay_reader_restarts", "Times the relay's reader lost Redis")
        restarts.add_metric([], self.relay.restarts)
        yield restarts
        # One short Lua call on the engine's pool; /metrics runs it in a worker thread.
        in_use = runtime.current().semaphore.in_use()
        cap = self.settings.max_concurrent_monitors
        running = GaugeMetricFamily("mtmon_monitors_running", "Monitors holding a slot (live leases)")
        running.add_metric([], in_use)
        yield running
        free = GaugeMetricFamily(
            "mtmon_monitor_slots_free", "Free monitor slots (MAX_CONCURRENT_MONITORS - running)"
        )
        free.add_metric([], max(0, cap - in_use))
        yield free
        capacity = GaugeMetricFamily("mtmon_monitor_capacity", "MAX_CONCURRENT_MONITORS")
        capacity.add_metric([], cap)
        yield capacity
        yield from _alerts_firing()


def _alerts_firing() -> Iterable[GaugeMetricFamily]:
    """Open alerts by rule kind, from PostgreSQL (the one place that knows them all);
    nothing when it does not answer."""
    try:
        with sessions.db() as session:
            counts = alert_counts(session)
    except Exception:
        return
    firing = GaugeMetricFamily("mtmon_alerts_firing", "Alerts open now, by rule kind", labels=["kind"])
    for kind in AlertKind:
        firing.add_metric([kind.value], counts.get(kind.value, 0))
    yield firing


class HttpMetrics:
    """Counts every HTTP request by its route template (never the raw path: ids would
    make one series per customer) and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)
