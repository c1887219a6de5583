"""The dashboard's router view in a real browser (Playwright driving Debian's chromium)
against the real stack: uvicorn, a monitors worker running the router's watch, a control
worker, beat, the RouterOS simulator, PostgreSQL and Redis.

What the view shows is compared with what the page received on /ws (the top frames)
and with what the API answers; one customer's row is deleted before the watch starts,
so its session is an unknown one. Screenshots (desktop, phone portrait) go to
var/screenshots/.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from harness.web import Uvicorn, serving
from tasks import sessions
from tasks.message import format_bps
from tests.tasks.engine import Engine
from tests.web.test_dashboard import (
    PHONE,
    SCREENSHOTS,
    FrameLog,
    shoot,
    view,
    wait_panel,
    watch,
)

PPPOE, HOTSPOT, STATIC = 8, 2, 2
STRANGER = 3  # the index of the PPPoE customer whose row is deleted: an unknown session


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    from models import Customer

    eng = engine_factory(
        pppoe=PPPOE, hotspot=HOTSPOT, static=STATIC, ROUTER_WATCH="true", ROUTER_WATCH_INTERVAL="1"
    )
    # Before any watch reads the customers: its session is a login no customer has.
    with sessions.db() as s:
        row = s.get(Customer, uuid.UUID(eng.customer_id(eng.usernames("pppoe")[STRANGER])))
        assert row is not None
        s.delete(row)
    eng.start_worker("monitors", concurrency=6, name="router-mon")
    eng.start_worker("default", concurrency=2, name="router-ctl")
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {**engine.env, "WS_PING_INTERVAL": "1"}
    with serving(env, tmp_path_factory.mktemp("router") / "uvicorn.log") as served:
        yield served


def top_frames(log: FrameLog) -> list[dict[str, Any]]:
    return [f for f in log.frames if f.get("type") == "top" and "top" in f]


def test_dashboard_router_view_top_sessions_unknown_and_drill_down(
    engine: Engine, server: Uvicorn, context: BrowserContext, browser: Browser
) -> None:
    stranger = engine.usernames("pppoe")[STRANGER]
    page = context.new_page()
    seen = watch(page)
    received = FrameLog().install(page)
    page.goto(server.url)
    page.locator("#router-view").wait_for(state="visible")
    assert view(page)["router"] == ROUTER_ID
    assert page.locator("#router-pick").input_value() == ROUTER_ID

    # The top table fills from the frames on /ws, each cycle, in the frame's order.
    rated = PPPOE - 1 + HOTSPOT + STATIC  # every known customer has a rate from the second cycle

    def filled() -> dict[str, Any] | None:
        v = view(page)
        return v if v["frames"] >= 2 and len(v["top"]) == rated else None

    first = wait_for(filled, 30.0, what="the top table filled from frames", step=0.25)
    later = wait_for(
        # ...and drawn: the frame's id is known on arrival, its table at the next animation frame
        lambda: (v := view(page))["frames"] >= first["frames"] + 3 and v["topRendered"] and v,
        15.0,
        what="three more frames",
        step=0.25,
    )
    frames = top_frames(received)
    newest = next(f for f in frames if f["id"] == later["frameId"])
    assert later["top"] == [r["customer_id"] for r in newest["top"]]
    assert later["text"]["online"] == str(PPPOE + HOTSPOT)  # the unknown session counts
    assert later["text"]["download"] == format_bps(newest["download_bps"])
    assert later["text"]["upload"] == format_bps(newest["upload_bps"])
    assert later["text"]["unknown"] == "1"
    # Rows are the same elements from frame to frame (keyed), not drawn anew.
    page.evaluate("document.querySelectorAll('#top-rows tr').forEach((tr) => { tr.__kept = true; })")
    n = view(page)["frames"]
    wait_for(lambda: view(page)["frames"] >= n + 2, 10.0, what="two more frames", step=0.25)
    kept = page.evaluate("[...document.querySelectorAll('#top-rows tr')].filter((tr) => tr.__kept).length")
    assert kept == rated
    row = page.locator("#top-rows tr").first
    assert row.locator(".top-value").inner_text().endswith("bps")
    assert page.locator("#top-rows .bar-fill").count() == rated

    # Sorted by upload: the API's order, read again each frame.
    page.get_by_role("button", name="Upload", exact=True).click()

    def by_upload() -> dict[str, Any] | None:
        v = view(page)
        ups = [r["upload_bps"] for r in v["rows"]]
        return v if v["by"] == "upload" and len(ups) == rated and ups == sorted(ups, reverse=True) else None

    wait_for(by_upload, 10.0, what="the table by upload", step=0.25)
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("Upload")
    page.get_by_role("button", name="Download", exact=True).click()

    # A session search finds a customer by its name.
    target = engine.usernames("pppoe")[0]
    name = engine.customers[target]["name"]
    search = page.get_by_label("Find a session")
    search.fill(name)
    page.locator("#session-summary", has_text="of 1 sessions").wait_for(timeout=10_000)
    assert view(page)["sessions"] == [engine.customers[target]["pppoe_username"]]
    with httpx.Client(base_url=server.url, timeout=15.0) as http:
        answer = http.get(f"/api/routers/{ROUTER_ID}/sessions", params={"q": target}).json()
    [session] = answer["sessions"]
    row = page.locator("#session-rows tr").first
    assert row.locator(".session-address").inner_text() == session["address"]
    assert row.locator(".top-name").inner_text() == name
    search.fill("")
    page.locator("#session-summary", has_text=f"of {PPPOE + HOTSPOT} sessions").wait_for(timeout=10_000)

    # A session that drops leaves the list on its session_down (and comes back on its up).
    dropped = engine.usernames("pppoe")[1]
    events = view(page)["sessionEvents"]
    engine.sim.drop_pppoe(dropped)
    try:
        gone = wait_for(
            lambda: (v := view(page))["sessionEvents"] > events and dropped not in v["sessions"] and v,
            15.0,
            what="the dropped session to leave the list",
            step=0.25,
        )
        assert gone["sessionTotal"] == PPPOE + HOTSPOT - 1
    finally:
        engine.sim.restore_pppoe(dropped)
    wait_for(lambda: dropped in view(page)["sessions"], 15.0, what="the session back in the list", step=0.25)

    uptimes = page.evaluate(
        """import("/static/js/format.js").then((m) =>
             [93784, 3725, 125, 42, null].map((s) => m.formatUptime(s)))"""
    )
    assert uptimes == ["1d 2h", "1h 02m", "2m 05s", "42s", "–"]
    # The deleted customer's session is listed among the unknown, with its address.
    wait_for(lambda: view(page)["unknown"] == [stranger], 15.0, what="the unknown session", step=0.25)
    assert page.locator("#unknown-list li").first.inner_text().startswith(stranger)

    # One click on a row starts that customer's monitor and shows its live panel.
    cid = view(page)["top"][0]
    page.locator(f'#top-rows tr[data-customer-id="{cid}"] .top-name').click()
    wait_panel(page, cid, lambda p: len(p["sampleIds"]) >= 2, 30.0, "the clicked customer's samples")
    page.locator(f'#top-rows tr[data-customer-id="{cid}"] .badge').wait_for(state="visible", timeout=10_000)
    page.mouse.move(0, 0)  # no hover underline in the picture
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    shoot(page, "router-view-desktop.png")
    page.locator("#router-view").screenshot(path=str(SCREENSHOTS / "router-view.png"))
    # A second click shows the same panel: no second monitor, no error.
    page.locator(f'#top-rows tr[data-customer-id="{cid}"] .top-name').click()
    assert page.locator("#router-action").is_hidden()
    with httpx.Client(base_url=server.url, timeout=15.0) as http:
        monitors = http.get("/api/monitor/status").json()["monitors"]
        assert [m["customer_id"] for m in monitors] == [cid]
        assert http.post("/api/monitor/stop", params={"customer_id": cid}).status_code == 200

    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        small.goto(server.url)
        wait_for(lambda: len(view(small)["top"]) == rated, 30.0, what="the phone's top table", step=0.25)
        small.evaluate("window.scrollTo(0, document.querySelector('#router-view').offsetTop - 8)")
        small.wait_for_timeout(300)
        shoot(small, "router-view-phone.png")
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        # ...and the sessions table fits its box: no column cut off at the right edge
        overflow = small.evaluate(
            "(() => { const box = document.querySelector('.session-table').parentElement;"
            " return box.scrollWidth - box.clientWidth; })()"
        )
        assert overflow <= 0, f"the sessions table is {overflow}px wider than its box on a phone"
    finally:
        phone.close()
    assert not seen.page_errors
    assert not seen.unexpected_console_errors()
    assert not seen.foreign_urls(server)
