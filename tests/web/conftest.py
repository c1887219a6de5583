"""Web-layer fixtures.

- `web_db`: a migrated throw-away schema with a few routers, a package and customers
  (passwords set, so tests can prove they never come back), and every settings view
  of this process pointed at it and at the test Redis database;
- `client`: the app under Starlette's TestClient (lifespan run);
- `engine_factory` (from tests/tasks): real Celery workers, beat and the simulator,
  which the live tests put a real uvicorn next to (harness/web.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
import redis
from starlette.testclient import TestClient

from harness.pg import migrated_schema

# Importing the engine's conftest first sets REDIS_URL & co. before Celery is configured.
from harness.seed import ROUTER_PASSWORD, apply_env
from models import Customer, Package, Router
from models.db import make_engine, session_factory
from settings import get_settings
from tasks import sessions
from tests.services import TEST_REDIS_URL
from tests.tasks.conftest import BASE_ENV, engine_factory  # noqa: F401
from tests.web.local import LOCAL_URL
from web.app import create_app

PPPOE_PASSWORD = "Pppoe-pw-K9z!leak"
HOTSPOT_PASSWORD = "Hotspot-pw-3Jq!leak"
ROUTER_ID = "r1"
OTHER_ROUTER = "mikrotik-002"  # named by customers, no routers row: the settings' default router


@dataclass
class WebDb:
    url: str
    redis: redis.Redis
    customers: dict[str, str]  # username -> id
    package_id: int

    def id(self, username: str) -> str:
        return self.customers[username]


def _seed(url: str) -> tuple[dict[str, str], int]:
    engine = make_engine(url, pool_size=1, max_overflow=1)
    people = [
        # username, service, status, router, extra fields
        (
            "alice",
            "pppoe",
            "active",
            ROUTER_ID,
            {"pppoe_username": "alice", "pppoe_password": PPPOE_PASSWORD},
        ),
        (
            "bob",
            "hotspot",
            "active",
            ROUTER_ID,
            {"hotspot_username": "bob", "hotspot_password": HOTSPOT_PASSWORD},
        ),
        ("carol", "static_ip", "active", OTHER_ROUTER, {"static_ip": "10.0.0.5"}),
        ("dave", "pppoe", "suspended", ROUTER_ID, {"pppoe_username": "dave"}),
        ("erin", "pppoe", "active", ROUTER_ID, {}),  # no pppoe_username: cannot be resolved
        ("frank", "pppoe", "active", ROUTER_ID, {"pppoe_username": "frank"}),
        ("grace", "pppoe", "active", ROUTER_ID, {"pppoe_username": "grace"}),
    ]
    out: dict[str, str] = {}
    try:
        with session_factory(engine).begin() as s:
            s.add(Router(id=ROUTER_ID, name="core-1", host="127.0.0.1", port=1, password=ROUTER_PASSWORD))
            package = Package(name="home-50M", download_bps=50_000_000, upload_bps=20_000_000)
            s.add(package)
            s.flush()
            for username, service, status, router, extra in people:
                cid = uuid.uuid4()
                s.add(
                    Customer(
                        id=cid,
                        mikrotik_id=router,
                        username=username,
                        name=f"{username.title()} Example",
                        service_type=service,
                        status=status,
                        package_id=package.id,
                        **extra,
                    )
                )
                out[username] = str(cid)
            package_id = package.id
    finally:
        engine.dispose()
    return out, package_id


@pytest.fixture(scope="module")
def web_db() -> Iterator[WebDb]:
    saved = dict(os.environ)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        with migrated_schema(prefix="web") as url:
            apply_env({**BASE_ENV, "DATABASE_URL": url})
            client.flushdb()
            customers, package_id = _seed(url)
            try:
                yield WebDb(url=url, redis=client, customers=customers, package_id=package_id)
            finally:
                sessions.dispose()  # the service's pool holds connections into the schema
    finally:
        client.flushdb()
        client.close()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def client(web_db: WebDb) -> Iterator[TestClient]:
    with TestClient(create_app(), base_url=LOCAL_URL) as test_client:
        yield test_client


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the JSON error shape with this status and code; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "error" and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body
