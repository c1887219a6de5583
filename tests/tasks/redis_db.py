"""A clean Redis database per test (TEST_REDIS_URL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.services import TEST_REDIS_URL


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
