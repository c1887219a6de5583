"""cli.backends: the local backend (database and Redis) and `--api` (a real uvicorn on the
same schema and Redis) find the same customers and print the same answers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

import cli
from harness.polling import wait_for
from harness.process import ROOT
from harness.web import Uvicorn, serving
from tasks import service, sessions
from tests.tasks.engine import Engine
from tests.tasks.rows import add_pppoe_customer
from tests.tasks.stored_reports import wait_report

TOKEN = "cli-t0ken-Hq72w-Pz4Kb9Xm3Vd6Jr8Tn5"
ROUTER = "cli-search"

# mtmon's stdout for the same arguments, without --api then with it.
Both = Callable[..., tuple[str, str]]


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Iterator[Engine]:
    eng = engine_factory(pppoe=2, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=2, name="cli-backends-mon")
    yield eng


@pytest.fixture(scope="module")
def api(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {**engine.env, "API_TOKEN": TOKEN}
    with serving(env, tmp_path_factory.mktemp("cli") / "uvicorn.log") as server:
        yield server


@pytest.fixture
def both(api: Uvicorn, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Both]:
    monkeypatch.setenv("API_TOKEN", TOKEN)  # what --api sends

    def run(*argv: str) -> tuple[str, str]:
        outs = []
        for prefix in ([], ["--api", api.url]):
            code = cli.main([*prefix, *argv])
            out, err = capsys.readouterr()
            assert (code, err) == (0, ""), (prefix, argv, err)
            outs.append(out)
        return outs[0], outs[1]

    yield run


@pytest.fixture(scope="module")
def searched(engine: Engine) -> dict[str, str]:
    """Customers on a router of their own: name -> id. `Null Status` has a NULL status,
    as a writer other than the models may leave it (the web reads it as active)."""
    people = {
        "Null Status": "active",
        "Plain Active": "active",
        "Held Back": "suspended",
        "100%_real": "active",
        "1000 real": "active",
        "under_score": "active",
        "underXscore": "active",
    }
    ids: dict[str, str] = {}
    for n, (name, status) in enumerate(people.items()):
        ids[name] = add_pppoe_customer(ROUTER, f"cli-search-{n}", name, status=status)
    with sessions.db() as s:
        s.execute(text("UPDATE customers SET status = NULL WHERE id = :id"), {"id": ids["Null Status"]})
    return ids


def _ids(out: str) -> list[str]:
    return [c["id"] for c in json.loads(out)["customers"]]


def test_backends_status_active_includes_null_status_customers(searched: dict[str, str], both: Both) -> None:
    local, remote = both("customers", "--router", ROUTER, "--status", "active", "--json")
    assert json.loads(local) == json.loads(remote)
    assert set(_ids(local)) == {id_ for name, id_ in searched.items() if name != "Held Back"}
    local, remote = both("customers", "--router", ROUTER, "--status", "active")
    assert local == remote and "Null Status" in local and "Held Back" not in local


def test_backends_search_text_matches_percent_and_underscore_literally(
    searched: dict[str, str], both: Both
) -> None:
    local, remote = both("customers", "0%_", "--router", ROUTER, "--json")
    assert json.loads(local) == json.loads(remote)
    assert _ids(local) == [searched["100%_real"]]
    local, remote = both("customers", "r_s", "--router", ROUTER, "--json")
    assert json.loads(local) == json.loads(remote)
    assert _ids(local) == [searched["under_score"]]
    local, remote = both("customers", "%", "--router", ROUTER)
    assert local == remote and local.splitlines()[-1] == "1 of 1 customers (* monitored)"


_MOVING = ("last_sample_at", "lease_expires_in")  # a second apart, they differ


def test_backends_status_has_the_api_shape(engine: Engine, both: Both) -> None:
    username = engine.usernames("pppoe")[0]
    customer_id = engine.customer_id(username)

    def running() -> bool:
        row = sessions.open_for_customer(customer_id)
        return row is not None and row.actual_state == "running"

    service.start(customer_id, requested_by="test")
    try:
        wait_for(running, 20.0, "the monitor to run")
        local, remote = both("status", "--json")
        mine, theirs = json.loads(local), json.loads(remote)
        assert mine.keys() == theirs.keys() and mine["monitor_count"] == 1
        (m,), (t,) = mine["monitors"], theirs["monitors"]
        assert m.keys() == t.keys() and "actual_state" not in m
        assert {k: v for k, v in m.items() if k not in _MOVING} == {
            k: v for k, v in t.items() if k not in _MOVING
        }
        assert (m["username"], m["state"], m["live"]) == (username, "running", True)
        local, remote = both("status")
        assert local == remote and f"{username} " in local and "running" in local
    finally:
        service.stop(customer_id, requested_by="test")


def test_backends_local_loads_no_http_layer() -> None:
    """The CLI reuses web/queries, which must stay free of Starlette (and the routes)."""
    probe = (
        "import sys, cli, cli.backends; "
        "print([m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn') "
        "or (m.startswith('web.') and not m.startswith('web.queries'))])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_backends_sessions_and_report_print_the_same(engine: Engine, both: Both) -> None:
    username = engine.usernames("pppoe")[1]
    customer_id = engine.customer_id(username)
    info = service.start(customer_id, requested_by="test")
    wait_for(
        lambda: (sessions.get(info.session_id) or info).actual_state == "running", 20.0, "the monitor to run"
    )
    service.stop(customer_id, requested_by="test")
    wait_report(info.session_id, 5.0)
    local, remote = both("sessions", username, "--json")
    assert local == remote and [r["session_id"] for r in json.loads(local)["items"]] == [info.session_id]
    local, remote = both("sessions", username)
    assert local == remote and info.session_id in local and local.splitlines()[-1] == "1 of 1 sessions"
    local, remote = both("report", info.session_id, "--json")
    assert local == remote and json.loads(local)["stop_reason"] == "stopped by test"
    local, remote = both("report", info.session_id)
    assert local == remote and f"session {info.session_id}: {username}" in local


def test_backends_report_refusals_are_one_line(
    engine: Engine, api: Uvicorn, capsys: pytest.CaptureFixture[str]
) -> None:
    for prefix in ([], ["--api", api.url]):
        assert cli.main([*prefix, "report", "not-a-session"]) == 1
        assert capsys.readouterr().err == "error: not a session id (a UUID): 'not-a-session'\n"
    missing = "00000000-0000-4000-8000-000000000000"
    assert cli.main(["report", missing]) == 1
    assert capsys.readouterr().err == f"error: no monitor session {missing}\n"
