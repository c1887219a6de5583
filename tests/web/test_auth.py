"""web.auth over a real uvicorn: state-changing requests from foreign origins are
refused (CSRF), and the session cookie is Secure when the app is reached over HTTPS
through a trusted proxy (FORWARDED_ALLOW_IPS) or when COOKIE_SECURE says so."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from harness.web import Uvicorn, serving
from tests.web.responses import assert_error
from tests.web.webdb import WebDb
from web.auth import COOKIE

TOKEN = "auth-t0ken-Mx2Rb7Kq4Wz9Tc5Hn8Lp-Yd3"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {**os.environ, "API_TOKEN": TOKEN, "ALLOWED_ORIGINS": "https://noc.example.net"}
    with serving(env, tmp_path_factory.mktemp("auth") / "uvicorn.log") as served:
        yield served


def test_auth_unsafe_method_from_a_foreign_origin_is_refused(server: Uvicorn, web_db: WebDb) -> None:
    cid = web_db.id("frank")
    with httpx.Client(base_url=server.url, headers=BEARER, timeout=10.0) as client:
        for origin in ("https://evil.example", "null", f"http://localhost:{server.port + 1}"):
            headers = {"Origin": origin}
            body = assert_error(
                client.post("/api/monitor/stop", params={"customer_id": cid}, headers=headers),
                403,
                "forbidden_origin",
            )
            assert "ALLOWED_ORIGINS" in body["message"]
            assert_error(client.delete(f"/api/customers/{cid}", headers=headers), 403, "forbidden_origin")
            assert_error(
                client.post("/api/session", json={"token": TOKEN}, headers=headers), 403, "forbidden_origin"
            )
            assert client.get("/api/customers", headers=headers).status_code == 200  # reading is not CSRF
        # The app's own page, an allowed origin, and a script without Origin are served.
        for headers in (
            {"Origin": f"http://127.0.0.1:{server.port}"},
            {"Origin": "https://noc.example.net"},
            {},
        ):
            stop = client.post("/api/monitor/stop", params={"customer_id": cid}, headers=headers)
            assert_error(stop, 404, "not_monitored")


def _login(server: Uvicorn, headers: dict[str, str]) -> str:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        response = client.post("/api/session", json={"token": TOKEN}, headers=headers)
        assert response.status_code == 200 and COOKIE in response.cookies
        return response.headers["set-cookie"].lower()


def test_auth_cookie_is_secure_behind_an_https_proxy(server: Uvicorn) -> None:
    """uvicorn trusts X-Forwarded-Proto from FORWARDED_ALLOW_IPS (127.0.0.1 by default)."""
    assert "; secure" not in _login(server, {})
    assert "; secure" in _login(server, {"X-Forwarded-Proto": "https"})


def test_auth_cookie_secure_setting_marks_it_always(
    web_db: WebDb, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {**os.environ, "API_TOKEN": TOKEN, "COOKIE_SECURE": "true"}
    with serving(env, tmp_path_factory.mktemp("auth") / "secure.log") as server:
        assert "; secure" in _login(server, {})
