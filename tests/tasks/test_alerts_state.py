"""Alert state against PostgreSQL and Redis: the alerts table decides, only the writer
that changed the row announces, a fenced-out writer writes nothing."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from sqlalchemy import select

from harness.polling import wait_for
from models import Alert, AlertDelivery, Customer
from models.enums import AlertKind
from settings import get_settings
from tasks import alerts, keys, sessions
from tasks.alert_eval import FIRE, RESOLVE, RuleSpec, Transition
from tasks.alert_hooks import Alerting
from tests.tasks.alerting import add_rule, events
from tests.tasks.receiver import add_webhook


def _customer() -> str:
    with sessions.db() as s:
        c = Customer(
            name="Budi", username=f"budi-{uuid.uuid4().hex[:6]}", service_type="pppoe", mikrotik_id="r1"
        )
        c.pppoe_username = c.username
        s.add(c)
        s.flush()
        return str(c.id)


def _transition(edge: str, rule_id: int, customer_id: str, at: float = 1_800_000_000.0) -> Transition:
    rule = RuleSpec(rule_id, "test util", AlertKind.UTILIZATION, "all", None, {"for_s": 10})
    return Transition(
        edge,  # type: ignore[arg-type]  # FIRE or RESOLVE
        rule,
        f"customer:{customer_id}",
        customer_id,
        "r1",
        97.0,
        95.0,
        {"value": 97.0, "threshold": 95.0, "for_s": 10, "direction": "download"},
        "Budi: download at 97 % of plan for 10 s",
        at,
    )


def test_alerts_state_concurrent_fires_make_one_alert_and_one_event(
    database: str, redis_client: redis.Redis
) -> None:
    customer_id = _customer()
    rule_id = add_rule(
        "test util", "utilization", {"direction": "download", "threshold_pct": 95, "for_s": 10}
    )
    add_webhook("test hook", "http://127.0.0.1:9/hook")
    fired = _transition(FIRE, rule_id, customer_id)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def evaluator() -> None:
        barrier.wait()
        results.append(alerts.apply(fired, redis_client))

    threads = [threading.Thread(target=evaluator) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [False, False, False, True]
    with sessions.db() as s:
        [row] = s.scalars(select(Alert).where(Alert.rule_id == rule_id)).all()
        assert row.subject == f"customer:{customer_id}" and row.resolved_at is None
        deliveries = s.scalars(select(AlertDelivery.event_id)).all()
    assert deliveries == [f"{row.id}:alert_firing"]  # written with the alert, once
    [entry] = events(redis_client, rule_id)
    assert entry["type"] == "alert_firing" and entry["alert_id"] == str(row.id)
    assert entry["customer_name"] == "Budi" and entry["value"] == 97.0 and entry["threshold"] == 95.0
    # Resolving twice (a redelivered message): one event; a later fire opens a new alert.
    resolved = _transition(RESOLVE, rule_id, customer_id, at=1_800_000_060.0)
    assert alerts.apply(resolved, redis_client) is True
    assert alerts.apply(resolved, redis_client) is False
    assert alerts.apply(_transition(FIRE, rule_id, customer_id, at=1_800_000_100.0), redis_client) is True
    assert [e["type"] for e in events(redis_client, rule_id)] == [
        "alert_firing",
        "alert_resolved",
        "alert_firing",
    ]
    with sessions.db() as s:
        assert len(s.scalars(select(Alert).where(Alert.resolved_at.is_(None))).all()) == 1


def test_alerts_state_writer_drops_what_a_fenced_out_owner_hands_it(
    database: str, redis_client: redis.Redis, request: pytest.FixtureRequest
) -> None:
    customer_id = _customer()
    rule_id = add_rule(
        "test util", "utilization", {"direction": "download", "threshold_pct": 95, "for_s": 10}
    )
    owner_key = keys.watch_owner("r1")
    redis_client.hset(owner_key, mapping={"token": "watch:r1:new", "fence": "8"})
    writer = Alerting(redis_client, get_settings())
    request.addfinalizer(writer.close)
    writer.submit([_transition(FIRE, rule_id, customer_id)], (owner_key, "watch:r1:old", 7))
    wait_for(lambda: writer.pending() == 0, 10, what="the writer to take the job")
    with sessions.db() as s:
        assert s.scalars(select(Alert)).all() == []  # the stale watch's alert: not written
    assert events(redis_client, rule_id) == []
    writer.submit([_transition(FIRE, rule_id, customer_id)], (owner_key, "watch:r1:new", 8))
    wait_for(lambda: events(redis_client, rule_id), 10, what="the owner's alert")
    with sessions.db() as s:
        assert len(s.scalars(select(Alert)).all()) == 1
    assert len(events(redis_client, rule_id)) == 1
