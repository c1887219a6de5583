"""A panel's ping in a real browser (Playwright driving Debian's chromium): the RTT pane
under the bandwidth chart, lost probes marked, the RTT and loss readouts, the verdict in
words, and what the panel says when its monitor runs without ping.

Real uvicorn, PostgreSQL and Redis; the monitor session is a real `monitor_sessions` row
and its entries are published the way its monitor publishes them (tests/web/producer.py
LineProducer: fenced under the session's lease token), at exact rates and RTTs, so the
verdict's rules can be driven to each outcome. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page
from sqlalchemy import update

from harness.web import Uvicorn, serving
from models import MonitorSession
from models.db import make_engine, session_factory
from models.enums import ActualState, DesiredState
from tasks import session_reports
from tasks.message import CustomerMeta, format_bps
from tasks.report import new_report
from tests.web.producer import LineProducer
from tests.web.test_dashboard import SCREENSHOTS, FrameLog, shoot, snapshot, wait_panel, watch
from tests.web.webdb import ROUTER_ID, WebDb
from web.relay import parse_id

PLAN = (50_000_000, 20_000_000)  # the seeded package, home-50M (tests/web/webdb.py)
RISE_MS = 30
MIN_PROBES = 5
PACE = 0.15  # seconds between produced rounds: the lines spread over the chart
INTERVAL = 1.0  # a monitor's (MONITOR_INTERVAL): a report's durations and times at plan agree


@pytest.fixture(scope="module")
def server(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {
        **os.environ,
        "WS_PING_INTERVAL": "1",
        "DIAG_RTT_RISE_MS": str(RISE_MS),
        "DIAG_MIN_PROBES": str(MIN_PROBES),
    }
    with serving(env, tmp_path_factory.mktemp("latency") / "uvicorn.log") as served:
        yield served


class Sessions:
    """Open monitor sessions (rows the status lists), closed again after the test."""

    def __init__(self, web_db: WebDb) -> None:
        self.web_db = web_db
        self.engine = make_engine(web_db.url, pool_size=1, max_overflow=1)
        self.opened: list[LineProducer] = []

    def open(self, username: str) -> LineProducer:
        cid = uuid.UUID(self.web_db.id(username))
        row_id = uuid.uuid4()
        with session_factory(self.engine).begin() as s:
            s.add(
                MonitorSession(
                    id=row_id,
                    customer_id=cid,
                    router_id=ROUTER_ID,
                    desired_state=DesiredState.RUNNING,
                    actual_state=ActualState.RUNNING,
                    attempt=1,
                    started_at=datetime.now(UTC),
                )
            )
        meta = CustomerMeta(
            str(cid),
            f"{username.title()} Example",
            username,
            "pppoe",
            f"<pppoe-{username}>",
            ROUTER_ID,
            "home-50M",
            *PLAN,
        )
        line = LineProducer(self.web_db.redis, meta, str(row_id))
        self.opened.append(line)
        return line

    def close(self, session_id: str, reason: str = "stopped by request") -> None:
        with session_factory(self.engine).begin() as s:
            s.execute(
                update(MonitorSession)
                .where(MonitorSession.id == uuid.UUID(session_id))
                .values(
                    desired_state=DesiredState.STOPPED,
                    actual_state=ActualState.STOPPED,
                    stopped_at=datetime.now(UTC),
                    stop_reason=reason,
                )
            )

    def finish(self, line: LineProducer, reason: str = "stopped by api") -> None:
        """Close the session with its report, as its monitor does (tasks.session_reports):
        the report observed every sample and probe the monitor published."""
        report = new_report(line.session_id)
        for entry in line.published:
            report.observe(entry)
        assert session_reports.close_with_report(line.session_id, reason, report, attempt=1) == reason
        self.opened.remove(line)

    def close_all(self) -> None:
        for line in self.opened:
            line.release()
            self.close(line.session_id)
        self.engine.dispose()


@pytest.fixture
def sessions(web_db: WebDb) -> Iterator[Sessions]:
    opened = Sessions(web_db)
    yield opened
    opened.close_all()


def open_page(context: BrowserContext, server: Uvicorn, frames: FrameLog | None = None) -> Page:
    """The dashboard; `frames` logs /ws from the first socket (installed before the page
    loads: its feed may connect before `#app` shows)."""
    page = context.new_page()
    if frames is not None:
        frames.install(page)
    page.goto(server.url)  # no API_TOKEN: no login
    page.locator("#app").wait_for(state="visible")
    return page


def backfilled(page: Page, cid: str) -> dict[str, Any]:
    return wait_panel(page, cid, lambda p: p["backfill"] == "done", 15.0, "the panel's backfill")


def rounds(line: LineProducer, share: float, rtts: Sequence[float | None], pace: float = PACE) -> list[str]:
    """One sample at `share` of the plan, then one probe, per RTT, `pace` s apart; the probes' ids."""
    ids = []
    for rtt in rtts:
        line.sample(share)
        ids.append(line.probe(rtt))
        time.sleep(pace)
    return ids


def shoot_panel(page: Page, cid: str, name: str) -> None:
    """A screenshot of one panel."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(f'.panel[data-customer-id="{cid}"]').screenshot(path=str(SCREENSHOTS / name))


def format_ms(ms: float) -> str:
    """web/static/js/verdict.js formatMs."""
    return f"{ms:.1f} ms" if ms < 10 else f"{round(ms)} ms"


def test_dashboard_latency_draws_rtt_and_says_saturated_by_own_traffic(
    server: Uvicorn, sessions: Sessions, context: BrowserContext
) -> None:
    line = sessions.open("alice")
    cid = line.meta.customer_id
    line.started("on")
    frames = FrameLog()
    page = open_page(context, server, frames)
    seen = watch(page)
    backfilled(page, cid)
    assert "types=traffic%2Cevents%2Clatency" in snapshot(page)["feed"]["url"]

    idle = [9.0 + (i % 3) for i in range(MIN_PROBES + 3)]
    rounds(line, 0.05, idle)
    calm = wait_panel(page, cid, lambda p: p["rttPoints"] == len(idle), 15.0, "the idle probes drawn")
    assert calm["verdict"] == "no problem seen", calm["text"]["verdict"]
    assert calm["rttShown"] and calm["rttChartPoints"] >= len(idle) and calm["lossMarks"] == []

    # At 92 % of the plan the RTT climbs: the line's own traffic fills its queue.
    load = [140.0 + 5 * (i % 4) for i in range(MIN_PROBES + 3)]
    rounds(line, 0.92, load)
    full = wait_panel(
        page, cid, lambda p: p["rttPoints"] == len(idle) + len(load), 15.0, "the probes under load drawn"
    )
    assert full["verdict"] == "saturated by own traffic"
    assert full["text"]["verdict"].startswith("Verdict: saturated by own traffic — RTT rose by ")
    assert full["text"]["rtt"] == format_ms(load[-1])
    assert full["rttRange"][0] == 0 and full["rttRange"][1] >= max(load), "the pane's scale holds the line"
    assert full["text"]["rttUtil"] == "loss 0 % of the last 10"
    # The probes came over /ws (latency named in the feed's types), each drawn once.
    latency = [f for f in frames.entries(cid).values() if f["type"] == "latency"]
    assert len(latency) == len(idle) + len(load)
    assert [f["rtt_ms"] for f in sorted(latency, key=lambda f: parse_id(f["id"]))] == idle + load
    page.wait_for_timeout(1200)  # the next frame: the x axis slid a second
    shoot_panel(page, cid, "panel-rtt-saturated.png")
    shoot(page, "dashboard-rtt.png")
    assert not seen.page_errors
    assert not seen.unexpected_console_errors()


def test_dashboard_latency_marks_lost_probes_and_says_loss_without_load(
    server: Uvicorn, sessions: Sessions, context: BrowserContext
) -> None:
    line = sessions.open("frank")
    cid = line.meta.customer_id
    line.started("on")
    page = open_page(context, server)
    seen = watch(page)
    backfilled(page, cid)

    ids = rounds(line, 0.05, [12.0, 11.0, None, 12.5, 13.0, None, 12.0, 11.5])
    lost = [ids[2], ids[5]]
    line.sample(0.04)
    lost.append(line.probe(None, "host unreachable"))
    shown = wait_panel(page, cid, lambda p: len(p["lossMarks"]) == 3, 15.0, "three loss marks")
    # Each mark at its probe's time; the line breaks there (no RTT for a lost probe).
    assert shown["lossMarks"] == [int(i.split("-")[0]) / 1000 for i in lost]
    assert shown["rttPoints"] == 6
    assert shown["verdict"] == "loss without load"
    assert shown["text"]["verdict"].startswith(
        "Verdict: loss without load — 3 probes lost below 20 % of plan"
    )
    assert shown["text"]["rtt"] == "host unreachable"
    assert shown["text"]["rttUtil"] == "loss 33.33 % of the last 10"
    shoot_panel(page, cid, "panel-rtt-loss.png")
    assert not seen.page_errors
    assert not seen.unexpected_console_errors()


@pytest.mark.parametrize(
    ("username", "ping", "words"),
    [
        ("bob", "off", "ping off"),
        ("grace", "capped", "ping capped: PING_MAX_PER_ROUTER reached"),
        ("carol", "no address", "no address to ping"),
    ],
)
def test_dashboard_latency_says_why_a_monitor_runs_without_ping(
    server: Uvicorn, sessions: Sessions, context: BrowserContext, username: str, ping: str, words: str
) -> None:
    line = sessions.open(username)
    cid = line.meta.customer_id
    line.started(ping)
    page = open_page(context, server)
    seen = watch(page)
    for _ in range(3):
        line.sample(0.3)
    shown = wait_panel(
        page, cid, lambda p: len(p["sampleIds"]) == 3 and p["state"] == "running", 15.0, "three samples"
    )
    assert shown["ping"] == ping
    assert shown["text"]["rttUtil"] == words and shown["text"]["rtt"] == "–"
    assert not shown["rttShown"], "no empty RTT pane without ping"
    assert shown["verdict"] == "not enough data"
    shoot_panel(page, cid, f"panel-ping-{ping}.png")
    assert not seen.page_errors
    assert not seen.unexpected_console_errors()


def test_dashboard_latency_shows_the_report_when_a_session_stops_and_the_past_sessions(
    server: Uvicorn, sessions: Sessions, context: BrowserContext
) -> None:
    first = sessions.open("grace")
    cid = first.meta.customer_id
    first.started("on")
    page = open_page(context, server)
    seen = watch(page)
    backfilled(page, cid)
    rounds(first, 0.05, [12.0, None, 11.0, 12.0, None, 13.0], INTERVAL)
    wait_panel(page, cid, lambda p: p["rttPoints"] == 4, 15.0, "the first session's probes")

    # Stopped: the panel asks for the report, which its monitor writes a moment later.
    first.stopped("stopped by api")
    wait_panel(page, cid, lambda p: p["history"]["reportState"] == "waiting", 10.0, "the report asked for")
    time.sleep(0.8)
    sessions.finish(first)
    shown = wait_panel(page, cid, lambda p: p["history"]["reportState"] == "shown", 10.0, "the first report")
    api = context.request.get(f"{server.url}/api/sessions/{first.session_id}").json()
    assert shown["history"]["report"] == {"session_id": first.session_id, "verdict": "loss without load"}
    text = shown["history"]["reportText"]
    assert "Verdict\nloss without load" in text
    assert f"{format_bps(api['download']['avg_bps'])} / {format_bps(api['upload']['avg_bps'])}" in text
    assert f"{api['rtt']['loss_pct']} % of 6 probes" in text

    # The customer is monitored again in the same panel: a new session, a new verdict.
    second = sessions.open("grace")
    second.started("on")
    rounds(second, 0.05, [10.0] * MIN_PROBES, INTERVAL)
    rounds(second, 0.9, [120.0] * MIN_PROBES, INTERVAL)
    wait_panel(page, cid, lambda p: p["verdict"] == "saturated by own traffic", 15.0, "the second verdict")
    second.stopped("stopped by api")
    sessions.finish(second)
    again = wait_panel(
        page,
        cid,
        lambda p: p["history"]["reportFor"] == second.session_id and p["history"]["reportState"] == "shown",
        10.0,
        "the second report",
    )
    assert again["history"]["report"]["verdict"] == "saturated by own traffic"

    # Past sessions: read when opened, newest first, one CSV link for all and one each.
    panel = page.locator(f'.panel[data-customer-id="{cid}"]')
    panel.get_by_text("Past sessions").click()
    listed = wait_panel(page, cid, lambda p: p["history"]["listState"] == "shown", 10.0, "the past sessions")
    assert listed["history"]["items"] == [second.session_id, first.session_id]
    newest, older = listed["history"]["listText"]
    assert "saturated by own traffic" in newest and "RTT 10 ms idle / 120 ms load" in newest
    assert "loss without load" in older and "loss 33.33 % of 6 probes" in older
    csv_link = panel.get_by_role("link", name="Sessions CSV")
    answer = context.request.get(f"{server.url}{csv_link.get_attribute('href')}")
    assert answer.headers["content-type"].startswith("text/csv")
    assert len(answer.text().strip().splitlines()) == 3  # a header and the two sessions
    # The older one's report, from the list.
    panel.get_by_role("button", name=re.compile("^Show the report of the session started")).nth(1).click()
    wait_panel(page, cid, lambda p: p["history"]["reportFor"] == first.session_id, 5.0, "the older report")
    shoot_panel(page, cid, "panel-report-and-past-sessions.png")
    assert not seen.page_errors
    assert not seen.unexpected_console_errors(allowed=re.compile(r"status of 404"))  # asked before written
