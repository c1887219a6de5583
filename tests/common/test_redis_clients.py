"""common/redis_clients.py: plain Redis or the Sentinel master, from settings, the same way
for every client (the failover itself: tests/tasks/test_sentinel_failover.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import redis.sentinel

from common import redis_clients
from harness.sentinel import MASTER_NAME, SentinelDeployment
from settings import Settings, SettingsError, load_settings
from tests.services import TEST_REDIS_URL

NO_FILE = "/nonexistent/.env"


def _settings(**env: str) -> Settings:
    return load_settings(env, env_file=NO_FILE)


def test_redis_clients_plain_settings_keep_the_url() -> None:
    settings = _settings(REDIS_URL=TEST_REDIS_URL)
    assert not redis_clients.uses_sentinel(settings)
    assert redis_clients.target(settings) == TEST_REDIS_URL
    assert redis_clients.celery_broker(settings) == (TEST_REDIS_URL, {})
    client = redis_clients.sync_client(
        redis_clients.ClientOptions(
            socket_timeout=2, socket_connect_timeout=1, blocking=True, max_connections=2
        ),
        settings,
    )
    try:
        assert client.ping()
        assert isinstance(client.connection_pool, redis.BlockingConnectionPool)
    finally:
        client.close()


def test_redis_clients_sentinel_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="REDIS_SENTINELS cannot be combined with REDIS_URL"):
        _settings(REDIS_SENTINELS="s1:26379", REDIS_URL=TEST_REDIS_URL)
    with pytest.raises(SettingsError, match="REDIS_SENTINELS must list host:port"):
        _settings(REDIS_SENTINELS="s1")
    settings = _settings(REDIS_SENTINELS="s1:26379,[::1]:26380", REDIS_SENTINEL_PASSWORD="pw")
    assert settings.redis_sentinels == (("s1", 26379), ("::1", 26380))
    assert "pw" not in repr(settings)
    # The target names where clients go, never a password.
    assert redis_clients.target(settings) == "sentinel://s1:26379,::1:26380/mymaster/0"


def test_redis_clients_through_sentinel_reach_the_master_sync_and_async(tmp_path: Path) -> None:
    import asyncio

    deployment = SentinelDeployment(tmp_path).start()
    try:
        settings = load_settings(deployment.env(db=2), env_file=NO_FILE)
        blocking = redis_clients.ClientOptions(
            socket_timeout=2, socket_connect_timeout=1, blocking=True, max_connections=4
        )
        sync = redis_clients.sync_client(blocking, settings)
        try:
            sync.set("k", "v")
            assert isinstance(sync.connection_pool, redis.sentinel.SentinelConnectionPool)
            assert isinstance(sync.connection_pool, redis.BlockingConnectionPool)
            assert sync.connection_pool.service_name == MASTER_NAME
        finally:
            sync.close()
        # REDIS_DB applies to the master: the key is in database 2 of the master itself.
        with redis.Redis(port=deployment.master().port, db=2) as direct:
            assert direct.get("k") == b"v"

        async def read() -> object:
            client = redis_clients.async_client(blocking, settings)
            try:
                return await client.get("k")
            finally:
                await client.aclose()

        assert asyncio.run(read()) == b"v"
    finally:
        deployment.stop()
