"""The dashboard's page and files: served with a strict CSP, nothing inline, nothing from
another origin, public without a token, and the vendored uPlot exactly as published."""

from __future__ import annotations

import hashlib
import os
import re
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from settings import load_settings
from tests.web.local import LOCAL_URL
from tests.web.webdb import WebDb
from web.app import create_app
from web.page import STATIC_DIR

# uPlot 1.6.32 from `npm pack uplot@1.6.32` (web/static/vendor/uplot/README.md): to
# upgrade, vendor the new files the same way and record their sha256 here.
UPLOT = {
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    "LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
}
MODULES = sorted((STATIC_DIR / "js").glob("*.js"))


@pytest.mark.parametrize("name", sorted(UPLOT))
def test_static_vendored_uplot_is_the_published_file(name: str) -> None:
    digest = hashlib.sha256((STATIC_DIR / "vendor" / "uplot" / name).read_bytes()).hexdigest()
    assert digest == UPLOT[name]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.inline.append(f"<{self._in}>{data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def test_static_page_has_no_inline_code_and_only_local_files() -> None:
    page = _Page()
    page.feed((STATIC_DIR / "index.html").read_text())
    assert not page.inline, page.inline  # the CSP would refuse them
    for tag, attrs in page.tags:
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        for attr in ("src", "href"):
            value = attrs.get(attr)
            if value is not None and not value.startswith("#"):
                assert value.startswith("/static/"), (tag, attr, value)
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert {s.get("src") for s in scripts} == {"/static/js/main.js", "/static/vendor/uplot/uPlot.iife.min.js"}


def test_static_modules_import_only_each_other() -> None:
    names = {m.name for m in MODULES}
    assert names >= {"api.js", "feed.js", "panel.js", "chart.js", "customers.js", "format.js", "main.js"}
    for module in MODULES:
        text = module.read_text()
        for target in re.findall(r"""^\s*(?:import|export)\b[^;]*?from\s+["']([^"']+)["']""", text, re.M):
            assert target.startswith("./") and (module.parent / target).is_file(), (module.name, target)
        assert not re.search(r"https?://|(local|session)Storage\.|eval\(|new Function", text), module.name
    css = (STATIC_DIR / "dashboard.css").read_text()
    assert "url(" not in css and "@import" not in css


def test_static_page_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = dict(
        part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/js/main.js" type="module">' in response.text


def test_static_files_are_served_with_their_types(client: TestClient) -> None:
    for module in MODULES:
        response = client.get(f"/static/js/{module.name}")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"], module.name
    assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")
    uplot = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert hashlib.sha256(uplot.content).hexdigest() == UPLOT["uPlot.iife.min.js"]
    assert client.get("/static/nothing-here.js").status_code == 404


def test_static_page_and_files_are_public_when_a_token_is_required(web_db: WebDb) -> None:
    settings = load_settings(
        {
            **os.environ,
            "API_TOKEN": "t0ken-for-the-page-Hs5Yq2Nc8Vb1Tz6Rm",
            "DIAG_RTT_RISE_MS": "45",
            "DIAG_MIN_PROBES": "7",
        }
    )
    with TestClient(create_app(settings), base_url=LOCAL_URL) as locked:
        assert locked.get("/").status_code == 200
        assert locked.get("/static/js/main.js").status_code == 200
        assert locked.get("/static/favicon.svg").status_code == 200
        assert locked.get("/api/session").json() == {
            "status": "ok",
            "auth": "enabled",
            "authenticated": False,
            # The verdict's thresholds, the same the session reports use (settings).
            "diagnosis": {"rtt_rise_ms": 45, "min_probes": 7},
        }
        assert locked.get("/api/customers").status_code == 401  # the data is not


def test_static_files_carry_the_page_security_headers(client: TestClient) -> None:
    """A module or stylesheet opened on its own is as locked down as the page."""
    page = client.get("/")
    for path in ("/static/js/main.js", "/static/dashboard.css", "/static/vendor/uplot/uPlot.iife.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        for header in ("content-security-policy", "x-content-type-options", "referrer-policy"):
            assert response.headers[header] == page.headers[header], (path, header)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    etag = client.get("/static/js/main.js").headers["etag"]
    revalidated = client.get("/static/js/main.js", headers={"If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.headers["x-content-type-options"] == "nosniff"
