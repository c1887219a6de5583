"""The router watch's fenced publish against a real Redis: one id in both streams, the
summary in the combined stream, the whole frame in the router's, the view, the wake-ups."""

from __future__ import annotations

import json
import threading

import redis

from common.text import as_text
from harness.polling import wait_for
from tasks import keys
from tasks.message import CustomerMeta, RouterMeta, session_entry, top_entries, top_row
from tasks.semaphore import WATCHES, Semaphore
from tasks.watch_publisher import WatchPublisher
from tests.tasks.streams import decoded

ROUTER = RouterMeta("r1", "core-1")
ALICE = CustomerMeta("c-1", "Alice", "alice", "pppoe", "", "core-1", "home", 10_000_000, 1_000_000)
RUN = "host:1:watch"


def _frame(fence: int) -> tuple[dict[str, str], dict[str, str]]:
    return top_entries(
        ROUTER,
        online=1,
        unknown=0,
        customers=1,
        download_bps=5_000_000,
        upload_bps=1_000,
        interval=2.0,
        cycle_ms=3,
        rows=[top_row(ALICE, 5_000_000, 1_000, monitored=False)],
        fence=fence,
    )


def _lease(client: redis.Redis, token: str = "watch:r1:a") -> int:
    return Semaphore(client, space=WATCHES).claim(
        token, "r1", "r1", RUN, global_limit=10, router_limit=1, ttl=30
    )


def test_watch_publisher_frame_has_one_id_in_both_streams(redis_client: redis.Redis) -> None:
    fence = _lease(redis_client)
    publisher = WatchPublisher(redis_client, "r1")
    view = json.dumps({"status": "ok", "rows": []})
    ids = publisher.publish([_frame(fence)], token="watch:r1:a", fence=fence, view=view)
    assert ids is not None and len(ids) == 1
    (summary,) = decoded(redis_client.xrange(keys.COMBINED_STREAM))
    (whole,) = decoded(redis_client.xrange(keys.router_stream("r1")))
    assert summary["id"] == whole["id"] == ids[0]
    assert "top" not in summary and whole["top"][0]["customer_id"] == "c-1"
    assert summary["timestamp"] == whole["timestamp"] and summary["timestamp"].endswith("Z")
    stored = {as_text(k): as_text(v) for k, v in redis_client.hgetall(keys.router_view("r1")).items()}
    assert json.loads(stored["json"]) == {"status": "ok", "rows": []}
    assert stored["id"] == ids[0] and int(stored["at"]) == int(ids[0].split("-")[0])
    assert 0 < redis_client.pttl(keys.router_view("r1")) <= publisher.view_ttl_ms
    assert 0 < redis_client.pttl(keys.router_stream("r1")) <= publisher.retention_ms


def test_watch_publisher_refuses_a_watch_that_lost_its_lease(redis_client: redis.Redis) -> None:
    fence = _lease(redis_client)
    publisher = WatchPublisher(redis_client, "r1")
    Semaphore(redis_client, space=WATCHES).release("watch:r1:a", "r1", "r1")
    newer = _lease(redis_client, "watch:r1:b")
    assert publisher.publish([_frame(fence)], token="watch:r1:a", fence=fence, view="{}") is None
    assert redis_client.xlen(keys.COMBINED_STREAM) == 0 and not redis_client.exists(keys.router_view("r1"))
    assert publisher.publish([_frame(newer)], token="watch:r1:b", fence=newer) is not None


def test_watch_publisher_session_events_land_whole_and_wake_monitors(redis_client: redis.Redis) -> None:
    fence = _lease(redis_client)
    publisher = WatchPublisher(redis_client, "r1")
    event = session_entry(
        "session_up",
        ROUTER,
        ALICE,
        session="pppoe",
        name="alice",
        address="10.0.0.7",
        caller_id=None,
        uptime_s=0,
        fence=fence,
    )
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.SESSION_UP_CHANNEL)
    # Subscribed once Redis confirms it (pub/sub spans databases: other test processes'
    # monitors may listen on the same channel, so their count says nothing of ours).
    wait_for(
        lambda: (m := pubsub.get_message(timeout=0.1)) is not None and m["type"] == "subscribe",
        what="the subscription",
    )
    heard: list[str] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "message":
                heard.append(message["data"].decode())

    thread = threading.Thread(target=listen)
    thread.start()
    try:
        ids = publisher.publish([(event, event)], token="watch:r1:a", fence=fence, wake=["c-1"])
        wait_for(lambda: "c-1" in heard, timeout=2, what="the session-up notice")
    finally:
        done.set()
        thread.join()
        pubsub.close()
    assert ids is not None
    (combined,) = decoded(redis_client.xrange(keys.COMBINED_STREAM))
    (routed,) = decoded(redis_client.xrange(keys.router_stream("r1")))
    assert combined == routed and combined["type"] == "session_up" and combined["address"] == "10.0.0.7"
    assert combined["id"] == ids[0] and combined["customer_id"] == "c-1"
    assert not redis_client.exists(keys.router_view("r1"))  # no view in this call
