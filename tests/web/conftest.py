"""Web-layer fixtures (the data they seed: tests/web/webdb.py).

- `web_db`: a migrated throw-away schema with a few routers, a package and customers
  (passwords set, so tests can prove they never come back), and every settings view
  of this process pointed at it and at the test Redis database;
- `client`: the app under Starlette's TestClient (lifespan run);
- `playwright` and `browser`: Debian's chromium under Playwright, one per module
  (tests/web/browser.py).

The live tests put a real uvicorn next to `engine_factory` (tests/conftest.py):
real Celery workers, beat and the simulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from starlette.testclient import TestClient

from harness.pg import migrated_schema
from harness.seed import apply_env
from settings import get_settings
from tasks import sessions
from tests.services import TEST_REDIS_URL
from tests.tasks.engine import BASE_ENV
from tests.web.browser import DESKTOP, launch_chromium
from tests.web.local import LOCAL_URL
from tests.web.webdb import WebDb, seed
from web.app import create_app


@pytest.fixture(scope="module")
def web_db() -> Iterator[WebDb]:
    saved = dict(os.environ)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        with migrated_schema(prefix="web") as url:
            apply_env({**BASE_ENV, "DATABASE_URL": url})
            client.flushdb()
            customers, package_id = seed(url)
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


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh desktop browser context per test (a module may override it: test_dashboard
    sets a time zone unlike the machine's)."""
    ctx = browser.new_context(viewport=DESKTOP, locale="en-GB")
    yield ctx
    ctx.close()
