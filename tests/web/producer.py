"""Entries published the way monitors publish them, for relay and WebSocket tests that
need many entries, or exact ones, faster than routers produce them."""

from __future__ import annotations

import redis

from tasks.message import (
    CustomerMeta,
    RouterMeta,
    latency_entry,
    session_entry,
    status_entry,
    top_entries,
    top_row,
    traffic_from_row,
)
from tasks.publisher import Publisher
from tasks.semaphore import Semaphore


class Producer:
    """Publishes real entries the way monitors do (fenced samples, status events)."""

    def __init__(self, client: redis.Redis, retention: int = 3600, maxlen: int = 100_000) -> None:
        self.sem = Semaphore(client)
        self.pub = Publisher(client, combined_maxlen=maxlen, retention_seconds=retention)
        self.fences: dict[str, int] = {}
        self.seq = 0
        # Each session's own seq, as a monitor counts it: a jump is a hole, which the
        # fenced publish reports with a gap entry (tasks/publisher.py).
        self.seqs: dict[str, int] = {}

    def sample(self, customer: str) -> str:
        token = f"s-{customer}:1"
        if customer not in self.fences:
            self.fences[customer] = self.sem.claim(
                token, customer, "r1", "run", global_limit=10_000, router_limit=None, ttl=600
            )
        meta = CustomerMeta(
            customer, f"Name {customer[:4]}", customer[:8], "pppoe", f"<pppoe-{customer[:8]}>", "r1"
        )
        row = {"rx-bits-per-second": str(1000 + self.seq), "tx-bits-per-second": str(5000 + self.seq)}
        entry = traffic_from_row(
            row, meta, session_id=f"s-{customer}", seq=self._next_seq(customer), fence=self.fences[customer]
        )
        self.seq += 1
        ids = self.pub.publish(entry, token=token, fence=self.fences[customer])
        assert ids is not None
        return ids.combined

    def latency(self, customer: str, rtt_ms: float | None = 9.5) -> str:
        """A ping reply of the customer's monitor (after its first sample: the fence)."""
        token = f"s-{customer}:1"
        meta = CustomerMeta(customer, "n", "u", "pppoe", "<pppoe-u>", "r1")
        entry = latency_entry(
            meta,
            address="10.64.0.9",
            ping_seq=self.seq,
            rtt_ms=rtt_ms,
            status=None if rtt_ms is not None else "timeout",
            loss_pct=0.0 if rtt_ms is not None else 100.0,
            session_id=f"s-{customer}",
            fence=self.fences[customer],
        )
        ids = self.pub.publish(entry, token=token, fence=self.fences[customer])
        assert ids is not None
        return ids.combined

    def event(self, customer: str, kind: str = "offline") -> str:
        meta = CustomerMeta(customer, "n", "u", "pppoe", "<pppoe-u>", "r1")
        entry = status_entry(
            kind, meta, session_id=f"s-{customer}", seq=self._next_seq(customer), fence=None, reason="because"
        )
        self.seq += 1
        return self.pub.publish_status(entry).combined

    def _next_seq(self, customer: str) -> int:
        seq = self.seqs.get(customer, 0)
        self.seqs[customer] = seq + 1
        return seq


class LineProducer:
    """One monitor session of one customer with a plan, published the way its monitor
    publishes it (fenced under the session's lease token "<session>:<attempt>", so the
    status sees it live): `started` with its `ping` word, samples at a chosen share of
    the plan carrying the newest `rtt_ms`, one latency entry per probe with the loss over
    the last 10, and `stopped`. For the dashboard's RTT pane and verdict, which need
    exact lines."""

    def __init__(
        self, client: redis.Redis, customer: CustomerMeta, session_id: str, attempt: int = 1
    ) -> None:
        assert customer.package_download_bps and customer.package_upload_bps, "a plan to be at"
        self.meta = customer
        self.plan = (customer.package_download_bps, customer.package_upload_bps)
        self.session_id = session_id
        self.token = f"{session_id}:{attempt}"
        self.sem = Semaphore(client)
        self.fence = self.sem.claim(
            self.token,
            customer.customer_id,
            customer.router,
            "run",
            global_limit=10_000,
            router_limit=None,
            ttl=600,
        )
        self.pub = Publisher(client, combined_maxlen=100_000, retention_seconds=3600)
        self.seq = 0
        self.ping_seq = 0
        self.lost: list[bool] = []  # the last 10 probes: lost or not
        self.last_rtt: float | None = None
        self.published: list[dict[str, str]] = []  # the samples and probes, for a report to observe

    def started(self, ping: str = "on") -> str:
        return self._status("started", None, ping)

    def stopped(self, reason: str = "stopped by request") -> str:
        """The lease given back, then the event (as a monitor ends)."""
        self.release()
        return self._status("stopped", reason, None)

    def release(self) -> None:
        self.sem.release(self.token, self.meta.customer_id, self.meta.router)

    def _status(self, kind: str, reason: str | None, ping: str | None) -> str:
        entry = status_entry(
            kind, self.meta, session_id=self.session_id, seq=self.seq, fence=None, reason=reason, ping=ping
        )
        self.seq += 1
        return self.pub.publish_status(entry).combined

    def sample(self, share: float) -> str:
        """A sample at `share` of the plan in download, a tenth of that in upload."""
        down, up = round(self.plan[0] * share), round(self.plan[1] * share / 10)
        # The customer's view: the router's tx is the customer's download (tasks.message).
        row = {"rx-bits-per-second": str(up), "tx-bits-per-second": str(down)}
        entry = traffic_from_row(
            row, self.meta, session_id=self.session_id, seq=self.seq, fence=self.fence, rtt_ms=self.last_rtt
        )
        self.seq += 1
        return self._publish(entry)

    def probe(self, rtt_ms: float | None, status: str = "timeout") -> str:
        """One ping reply: answered in `rtt_ms` ms, or lost (None) with the router's `status`."""
        lost = rtt_ms is None
        self.lost = [*self.lost, lost][-10:]
        if not lost:
            self.last_rtt = rtt_ms
        entry = latency_entry(
            self.meta,
            address="10.64.0.9",
            ping_seq=self.ping_seq,
            rtt_ms=rtt_ms,
            status=status if lost else None,
            loss_pct=round(100 * sum(self.lost) / len(self.lost), 2),
            session_id=self.session_id,
            fence=self.fence,
        )
        self.ping_seq += 1
        return self._publish(entry)

    def _publish(self, entry: dict[str, str]) -> str:
        ids = self.pub.publish(entry, token=self.token, fence=self.fence)
        assert ids is not None, "fenced out"
        self.published.append(entry)
        return ids.combined


class RouterProducer:
    """Publishes a router watch's entries the way the watch does (fenced, one id in the
    combined stream and the router's stream)."""

    def __init__(self, client: redis.Redis, router: str) -> None:
        from tasks.semaphore import WATCHES
        from tasks.watch_publisher import WatchPublisher

        self.router = RouterMeta(router, f"name of {router}")
        self.token = f"watch:{router}:test"
        self.fence = Semaphore(client, space=WATCHES).claim(
            self.token, router, router, "run", global_limit=1000, router_limit=1, ttl=600
        )
        self.pub = WatchPublisher(client, router)

    def top(self, customer: str, download_bps: int = 5_000_000) -> str:
        meta = CustomerMeta(
            customer, "Top Talker", "talker", "pppoe", "", self.router.router_name, None, None, None
        )
        summary, whole = top_entries(
            self.router,
            online=1,
            unknown=0,
            customers=1,
            download_bps=download_bps,
            upload_bps=1,
            interval=2.0,
            cycle_ms=1,
            rows=[top_row(meta, download_bps, 1, monitored=False)],
            fence=self.fence,
        )
        ids = self.pub.publish([(summary, whole)], token=self.token, fence=self.fence)
        assert ids is not None
        return ids[0]

    def session(self, customer: str, kind: str = "session_up") -> str:
        meta = CustomerMeta(customer, "n", "u", "pppoe", "", self.router.router_name)
        entry = session_entry(
            kind,
            self.router,
            meta,
            session="pppoe",
            name="u",
            address="10.0.0.2",
            caller_id=None,
            uptime_s=0,
            fence=self.fence,
        )
        ids = self.pub.publish([(entry, entry)], token=self.token, fence=self.fence)
        assert ids is not None
        return ids[0]


class AlertProducer:
    """Alert events written to the alerts stream as tasks/alerts.py writes them
    (tasks.message.alert_entry), for relay and WebSocket tests that need exact ones at
    once (or at a chosen id), without an alert row behind them."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def event(
        self,
        kind: str,
        alert_id: str,
        *,
        customer_id: str | None = None,
        router: str = "r1",
        entry_id: str = "*",
    ) -> str:
        from tasks import keys
        from tasks.message import alert_entry
        from tasks.timestamps import rfc3339

        entry = alert_entry(
            kind,
            alert_id=alert_id,
            rule_id=1,
            rule_name="At plan",
            rule_kind="utilization",
            subject=f"customer:{customer_id}" if customer_id else f"router:{router}",
            customer_id=customer_id,
            customer_name="Alice" if customer_id else None,
            username="alice" if customer_id else None,
            router=router,
            summary="Alice: download at 97 % of plan for 10 min",
            value=97.3,
            threshold=95.0,
            started_at=rfc3339(),
            resolved_at=rfc3339() if kind == "alert_resolved" else None,
            acknowledged_by="api" if kind == "alert_acknowledged" else None,
        )
        new_id = self.client.xadd(keys.ALERTS_STREAM, entry, id=entry_id)  # type: ignore[arg-type]
        return new_id.decode() if isinstance(new_id, bytes) else str(new_id)
