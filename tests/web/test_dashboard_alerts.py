"""The dashboard's alerts in a real browser (Playwright driving Debian's chromium) against
the real stack: uvicorn, a monitors worker, a control worker, beat, the RouterOS
simulator, PostgreSQL and Redis.

Alerts are opened and resolved through tasks.alerts.apply, as the evaluators do (the
alerts table's row, then the stream entry); the page must show them live from its one
feed, count them in the header, acknowledge them through the API (and get the
`alert_acknowledged` frame), drop a resolved one from the open list, read the open ones
over REST on load, and open a customer's panel (or the router view) from an alert.
Screenshots (desktop, phone portrait) go to var/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from harness.web import Uvicorn, serving
from tests.tasks.engine import Engine
from tests.web.alerting import add_rule, fire, resolve, row
from tests.web.test_dashboard import PHONE, SCREENSHOTS, FrameLog, shoot, snapshot, wait_panel, watch


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=3, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=4, name="alerts-mon")
    eng.start_worker("default", concurrency=2, name="alerts-ctl")
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {**engine.env, "WS_PING_INTERVAL": "1"}
    with serving(env, tmp_path_factory.mktemp("alerts") / "uvicorn.log") as served:
        yield served


@pytest.fixture(scope="module")
def api(server: Uvicorn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=15.0) as client:
        yield client


def alerts_view(page: Page) -> dict[str, Any]:
    value = snapshot(page)["alerts"]
    assert isinstance(value, dict)
    return value


def open_ids(page: Page) -> list[str]:
    return [a["id"] for a in alerts_view(page)["open"]]


def badge(page: Page) -> tuple[str, str]:
    found = page.locator("#alert-count")
    return found.inner_text(), found.get_attribute("class") or ""


def item(page: Page, alert_id: str) -> Any:
    return page.locator(f'li[data-alert-id="{alert_id}"]')


def test_dashboard_alerts_live_badge_acknowledge_resolve_and_links(
    engine: Engine, server: Uvicorn, api: httpx.Client, context: BrowserContext, browser: Browser
) -> None:
    username = engine.usernames("pppoe")[0]
    customer = engine.customers[username]
    cid = customer["id"]
    at_plan = add_rule(
        api, "At plan", "utilization", {"direction": "download", "threshold_pct": 95, "for_s": 600}
    )
    uplink = add_rule(api, "Uplink full", "router_total", {"threshold_bps": 900_000_000, "for_s": 60})
    page = context.new_page()
    seen = watch(page)
    received = FrameLog().install(page)
    page.goto(server.url)
    # No panel and no router chosen yet: the feed is open anyway, for the alerts.
    wait_for(lambda: alerts_view(page)["loads"] >= 1, 15.0, what="the open alerts read", step=0.2)
    wait_for(lambda: snapshot(page)["feed"]["state"] == "live", 15.0, what="the feed live", step=0.2)
    assert "alerts" in snapshot(page)["feed"]["url"]
    assert badge(page) == ("0 open alerts", "pill alerts-none")
    page.locator("#alerts-note", has_text="No open alert.").wait_for(timeout=5_000)

    # A customer's alert appears live, from the feed, and the badge counts it.
    summary = f"{customer['name']}: download at 97 % of plan for 10 min"
    alert_id = fire(engine.redis, at_plan, f"customer:{cid}", ROUTER_ID, summary)
    wait_for(lambda: open_ids(page) == [alert_id], 10.0, what="the alert in the list", step=0.1)
    assert alerts_view(page)["events"] >= 1 and alerts_view(page)["loads"] == 1  # live, not re-read
    firing = [f for f in received.frames if f.get("type") == "alert_firing"]
    assert [f["alert_id"] for f in firing] == [alert_id] and firing[0]["customer_id"] == cid
    assert badge(page) == ("1 open alert", "pill alerts-unacked")
    shown = item(page, alert_id)
    assert shown.locator(".alert-rule").inner_text() == "At plan"
    assert shown.locator(".alert-subject").inner_text().startswith(customer["name"])
    assert shown.locator(".alert-summary").inner_text() == summary
    assert shown.locator(".alert-since").inner_text().startswith("since ")

    # A router's alert: newest first, both unacknowledged.
    router_alert = fire(
        engine.redis, uplink, f"router:{ROUTER_ID}", ROUTER_ID, f"{ROUTER_ID}: 950 Mbps for 1 min"
    )
    wait_for(lambda: open_ids(page) == [router_alert, alert_id], 10.0, what="two open alerts", step=0.1)
    assert badge(page) == ("2 open alerts", "pill alerts-unacked")
    assert item(page, router_alert).locator(".alert-subject").inner_text() == f"Router {ROUTER_ID}"

    # Acknowledge in the browser: the API is called, the row says who, the frame arrives,
    # and the acknowledged alert goes below the unacknowledged one.
    with page.expect_response(lambda r: r.url.endswith(f"/api/alerts/{alert_id}/acknowledge")) as answer:
        shown.get_by_role("button", name="Acknowledge").click()
    assert answer.value.request.method == "POST" and answer.value.status == 200
    shown.locator(".alert-who", has_text="Acknowledged by api").wait_for(timeout=10_000)
    assert shown.get_by_role("button", name="Acknowledge").is_hidden()
    assert row(alert_id).acknowledged_by == "api"
    wait_for(
        lambda: [
            f for f in received.frames if f.get("type") == "alert_acknowledged" and f["alert_id"] == alert_id
        ],
        10.0,
        what="the alert_acknowledged frame",
        step=0.1,
    )
    assert [(a["id"], a["acknowledged_by"]) for a in alerts_view(page)["open"]] == [
        (router_alert, None),
        (alert_id, "api"),
    ]
    assert badge(page) == ("2 open alerts", "pill alerts-unacked")  # the router's is not acknowledged
    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "alerts-desktop.png")

    # The customer's name opens its live panel (its monitor started, as the router view does).
    shown.locator(".alert-subject").click()
    wait_panel(page, cid, lambda p: len(p["sampleIds"]) >= 2, 30.0, "the customer's panel live")
    assert api.get("/api/monitor/status").json()["monitors"][0]["customer_id"] == cid
    # The router's name shows that router in the router view.
    item(page, router_alert).locator(".alert-subject").click()
    wait_for(lambda: snapshot(page)["router"]["router"] == ROUTER_ID, 10.0, what="the router view", step=0.1)
    assert page.locator("#router-pick").input_value() == ROUTER_ID

    # Resolved: out of the open list, into the recently resolved; the badge follows.
    resolve(engine.redis, at_plan, f"customer:{cid}", ROUTER_ID, f"{customer['name']}: download back to 40 %")
    wait_for(
        lambda: open_ids(page) == [router_alert],
        10.0,
        what="the resolved alert out of the open list",
        step=0.1,
    )
    assert [a["id"] for a in alerts_view(page)["resolved"]] == [alert_id]
    # Drawn in the next animation frame: the lists follow the model.
    wait_for(
        lambda: (
            (page.locator("#alert-list li").count(), page.locator("#alert-resolved li").count()) == (1, 1)
        ),
        5.0,
        what="the lists drawn",
        step=0.1,
    )
    assert (
        item(page, alert_id).locator(".alert-who").inner_text().startswith("Acknowledged by api, resolved at")
    )
    assert badge(page) == ("1 open alert", "pill alerts-unacked")
    assert any(f.get("type") == "alert_resolved" and f["alert_id"] == alert_id for f in received.frames)
    page.mouse.move(0, 0)
    page.locator("#alerts").screenshot(path=str(SCREENSHOTS / "alerts.png"))

    # A fresh page reads the open alerts over REST; once all are acknowledged, amber.
    page.reload()
    wait_for(lambda: open_ids(page) == [router_alert], 15.0, what="the open alert read on load", step=0.2)
    item(page, router_alert).get_by_role("button", name="Acknowledge").click()
    item(page, router_alert).locator(".alert-who", has_text="Acknowledged by api").wait_for(timeout=10_000)
    assert badge(page) == ("1 open alert", "pill alerts-acked")
    # Acknowledging twice is the same answer and no second event.
    again = api.post(f"/api/alerts/{router_alert}/acknowledge")
    assert again.status_code == 200 and again.json()["alert"]["acknowledged_by"] == "api"

    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        small.goto(server.url)
        wait_for(lambda: open_ids(small) == [router_alert], 15.0, what="the phone's alert list", step=0.2)
        small.evaluate("window.scrollTo(0, document.querySelector('#alerts').offsetTop - 8)")
        small.wait_for_timeout(300)
        shoot(small, "alerts-phone.png")
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
    finally:
        phone.close()
    api.post("/api/monitor/stop", params={"customer_id": cid})
    assert not seen.page_errors
    assert not seen.unexpected_console_errors()
    assert not seen.foreign_urls(server)
