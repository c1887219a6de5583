"""The monitor task end to end: service.start -> worker -> router -> streams."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tasks import service
from tests.tasks.conftest import Engine, customer_entries, parse_ts, wait_entry
from tests.workers import wait_for


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=12, hotspot=2, static=2)
    eng.start_worker("monitors", concurrency=16)
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


def _first(eng: Engine, customer_id: str, kind: str, timeout: float, **match: object) -> dict:
    return wait_entry(
        eng.redis, customer_id,
        lambda e: e["type"] == kind and all(e.get(k) == v for k, v in match.items()),
        timeout, f"a {kind} entry for {customer_id} {match or ''}")


def test_monitor_pppoe_sample_reaches_stream_within_one_second(engine: Engine) -> None:
    username = engine.usernames("pppoe")[0]
    cid = engine.customer_id(username)
    started = time.time()
    info = service.start(cid, requested_by="test")
    sample = _first(engine, cid, "traffic", 5.0, session_id=info.session_id)
    assert parse_ts(sample["timestamp"]) - started < 1.0, (sample, started)
    record = engine.customers[username]
    assert sample["customer_id"] == cid
    assert sample["username"] == username
    assert sample["customer_name"] == record["name"]
    assert sample["service_type"] == "pppoe"
    assert sample["interface"] == f"<pppoe-{record['pppoe_username']}>"
    # Server-side interface: the router transmits (tx) to the customer = download.
    assert sample["download_bps"] == int(sample["tx_bits_per_second"])
    assert sample["upload_bps"] == int(sample["rx_bits_per_second"])
    assert sample["package"] == record["package"]
    assert "pppoe_password" not in sample and record["pppoe_password"] not in str(sample)
    service.stop(cid, requested_by="test")
