"""Webhook delivery of alert events through a real `alerts` worker to a real HTTP receiver."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import delete
from starlette.testclient import TestClient

from harness.polling import wait_for
from models import AlertDelivery, Webhook
from models.enums import AlertEventType, DeliveryState
from settings import get_settings
from tasks import alert_delivery, sessions
from tasks.alert_delivery import fan_out
from tests.tasks.engine import Engine
from tests.tasks.receiver import SECRET, Receiver, add_webhook, delivery, event, verify_signature
from tests.web.local import LOCAL_URL
from web.app import create_app

ALERTS_ENV = {
    "ALERT_WEBHOOK_TIMEOUT": "1",
    "ALERT_DELIVERY_INITIAL_DELAY": "0.2",
    "ALERT_DELIVERY_MAX_DELAY": "0.5",
}


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=1, hotspot=0, static=0, **ALERTS_ENV)
    eng.start_worker("alerts", concurrency=4, name="alerts")
    yield eng


@pytest.fixture
def receiver(engine: Engine) -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
    with sessions.db() as s:
        s.execute(delete(AlertDelivery))
        s.execute(delete(Webhook))


def _state(delivery_id: str, state: DeliveryState) -> bool:
    return delivery(delivery_id).state == state


def test_alert_delivery_flaky_receiver_gets_it_once_signed(engine: Engine, receiver: Receiver) -> None:
    receiver.fail_next = 2
    add_webhook("flaky", f"{receiver.url}/hook?token=t")
    fired = event()
    [delivery_id] = fan_out(fired)
    wait_for(lambda: _state(delivery_id, DeliveryState.DELIVERED), 15, what="delivered after two failures")
    attempts = receiver.received()
    assert len(attempts) == 3 and {a.key for a in attempts} == {delivery_id}
    assert receiver.accepted == [delivery_id]
    for got in attempts:
        assert got.path == "/hook?token=t"
        assert verify_signature(
            SECRET, got.headers["X-Mtmon-Timestamp"], got.body, got.headers["X-Mtmon-Signature"]
        )
        assert not verify_signature(
            "another-secret-0123456789",
            got.headers["X-Mtmon-Timestamp"],
            got.body,
            got.headers["X-Mtmon-Signature"],
        )
    assert len({a.body for a in attempts}) == 1  # every attempt sends the same body
    body = attempts[-1].json()
    assert body["id"] == delivery_id and body["event"] == "alert_firing"
    assert body["event_id"] == fired.event_id and body["rule"]["kind"] == "utilization"
    assert body["subject"]["name"] == "Alice" and body["values"]["download_utilization"] == 99.5
    row = delivery(delivery_id)
    assert row.attempts == 3 and row.last_status == 200 and row.delivered_at is not None
    # The same event again (a redelivered evaluator message): no new delivery, nothing sent.
    assert fan_out(fired) == []
    assert alert_delivery.sweep() == 0
    assert len(receiver.received()) == 3


def test_alert_delivery_hanging_endpoint_does_not_delay_another(engine: Engine, receiver: Receiver) -> None:
    stuck = Receiver().start()
    try:
        stuck.hang_next = 1000
        add_webhook("hangs", stuck.url)
        add_webhook("fine", receiver.url)
        ids = fan_out(event())
        assert len(ids) == 2
        wait_for(lambda: stuck.received(), 10, what="the hanging endpoint to be called")
        wait_for(lambda: receiver.accepted, 10, what="the other endpoint's delivery")
        # Delivered while the first endpoint still holds its request open.
        assert stuck.release.is_set() is False and len(stuck.received()) >= 1
        fine = next(i for i in ids if i in receiver.accepted)
        wait_for(lambda: _state(fine, DeliveryState.DELIVERED), 5, what="the row to say delivered")
        hung = next(i for i in ids if i != fine)
        wait_for(lambda: delivery(hung).last_error, 10, what="the hanging endpoint's timeout")
        assert "no answer within 1 s" in (delivery(hung).last_error or "")
    finally:
        stuck.stop()


def test_alert_delivery_dead_after_max_age_then_retried_by_hand(engine: Engine, receiver: Receiver) -> None:
    receiver.fail_all = True
    add_webhook("down", receiver.url)
    short = dataclasses.replace(get_settings(), alert_delivery_max_age=1.5)
    [delivery_id] = fan_out(event(), settings=short)
    wait_for(lambda: _state(delivery_id, DeliveryState.DEAD), 15, what="dead letter")
    dead = delivery(delivery_id)
    assert dead.last_error == "HTTP 500" and dead.last_status == 500 and dead.attempts >= 2
    assert receiver.accepted == []
    with TestClient(create_app(), base_url=LOCAL_URL) as client:
        listed = client.get("/api/webhook-deliveries", params={"state": "dead"}).json()
        assert [d["id"] for d in listed["deliveries"]] == [delivery_id]
        assert listed["deliveries"][0]["webhook_name"] == "down"
        receiver.fail_all = False
        retried = client.post(f"/api/webhook-deliveries/{delivery_id}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["delivery"]["state"] == "pending"
        wait_for(lambda: _state(delivery_id, DeliveryState.DELIVERED), 10, what="delivery after the retry")
        again = client.post(f"/api/webhook-deliveries/{delivery_id}/retry")
        assert again.status_code == 409 and again.json()["code"] == "delivery_not_dead"
    assert receiver.accepted == [delivery_id]


def test_alert_delivery_alertmanager_v2_shape(engine: Engine, receiver: Receiver) -> None:
    add_webhook("am", receiver.url, fmt="alertmanager")
    fired = event()
    [firing_id] = fan_out(fired)
    assert (
        fan_out(dataclasses.replace(fired, event=AlertEventType.ACKNOWLEDGED)) == []
    )  # Alertmanager has no ack
    resolved = dataclasses.replace(fired, event=AlertEventType.RESOLVED, ends_at=fired.at)
    [resolved_id] = fan_out(resolved)
    wait_for(lambda: len(receiver.accepted) == 2, 10, what="firing and resolved")
    by_key = {r.key: r for r in receiver.received()}
    for key in (firing_id, resolved_id):
        got = by_key[key]
        assert got.path == "/api/v2/alerts"
        [alert] = got.json()
        assert set(alert) == {"labels", "annotations", "startsAt", "endsAt"}
        assert alert["labels"]["alertname"] == "Customer at 95% of plan"
        assert alert["labels"]["subject_type"] == "customer" and alert["labels"]["router"] == "mikrotik-001"
        assert all(isinstance(v, str) for v in (*alert["labels"].values(), *alert["annotations"].values()))
    [firing] = by_key[firing_id].json()
    [ended] = by_key[resolved_id].json()
    assert firing["labels"] == ended["labels"]  # one alert to Alertmanager
    assert firing["endsAt"] > firing["startsAt"] and ended["endsAt"] == resolved.to_json()["ends_at"]
