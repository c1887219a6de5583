"""A worker SIGKILLed in the middle of a webhook delivery: the delivery is not lost."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from harness.polling import wait_for
from models.enums import DeliveryState
from tasks.alert_delivery import fan_out
from tests.tasks.engine import Engine
from tests.tasks.receiver import Receiver, add_webhook, delivery, event


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    yield engine_factory(
        pppoe=1,
        hotspot=0,
        static=0,
        ALERT_WEBHOOK_TIMEOUT="2",
        ALERT_DELIVERY_INITIAL_DELAY="0.2",
        ALERT_DELIVERY_MAX_DELAY="0.5",
        ALERT_DELIVERY_SWEEP_INTERVAL="1",
    )


def _unacked_deliveries(eng: Engine) -> list[str]:
    """Delivery ids of messages the broker still holds for a consumer that has not acked
    (kombu's Redis transport keeps them in the `unacked` hash until they are acked)."""
    held = []
    for raw in eng.redis.hvals("unacked"):
        message = json.loads(raw)[0]  # [message, exchange, routing key]
        if message["headers"]["task"] == "tasks.alert_delivery.deliver":
            held.append(message["headers"]["argsrepr"])
    return held


def test_alert_delivery_worker_killed_mid_post_loses_nothing(engine: Engine) -> None:
    receiver = Receiver().start()
    try:
        receiver.hang_next = 1
        add_webhook("kill", receiver.url)
        first = engine.start_worker("alerts", concurrency=2, name="doomed")
        [delivery_id] = fan_out(event())
        wait_for(lambda: receiver.received(), 10, what="the first attempt to reach the receiver")
        first.signal(signal.SIGKILL)
        first.wait_exit(10)
        # acks_late: the killed worker never acked, the broker still holds the message.
        assert any(delivery_id in held for held in _unacked_deliveries(engine))
        receiver.release.set()  # the first attempt's answer goes nowhere
        assert delivery(delivery_id).state == DeliveryState.PENDING
        engine.start_worker("alerts", concurrency=2, name="survivor")
        engine.start_beat()  # its sweep re-enqueues the overdue delivery once the claim ran out
        wait_for(lambda: delivery(delivery_id).state == DeliveryState.DELIVERED, 30, what="redelivery")
        assert receiver.accepted == [delivery_id]
        assert {r.key for r in receiver.received()} == {delivery_id}
        assert delivery(delivery_id).attempts == 2
    finally:
        receiver.stop()
