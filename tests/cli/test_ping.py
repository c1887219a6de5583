"""`mtmon ping USER`: a one-shot ping from the customer's router (the simulator), on the
database directly and through `--api` (a real uvicorn), and its refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

import cli
from harness.web import Uvicorn, serving
from tests.tasks.engine import Engine

TOKEN = "cli-p1ng-Hq72w-Pz4Kb9Xm3Vd6Jr8Tn5"


@pytest.fixture(scope="module")
def engine(engine_factory: Any) -> Engine:
    eng: Engine = engine_factory(pppoe=2, hotspot=0, static=1)
    return eng


@pytest.fixture(scope="module")
def api(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    with serving(
        {**engine.env, "API_TOKEN": TOKEN}, tmp_path_factory.mktemp("ping") / "uvicorn.log"
    ) as server:
        yield server


@pytest.fixture(params=["local", "api"])
def via(request: pytest.FixtureRequest, api: Uvicorn, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The arguments before the command: none (database and Redis), or --api URL."""
    monkeypatch.setenv("API_TOKEN", TOKEN)
    return [] if request.param == "local" else ["--api", api.url]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ping_prints_every_probe_and_the_totals(
    engine: Engine, via: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    username = engine.usernames("pppoe")[0]
    code, out, err = run(capsys, *via, "ping", username, "--count", "2")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert re.fullmatch(rf"ping {re.escape(username)} at 10\.\d+\.\d+\.\d+ from router sim-1:", lines[0])
    probes = [re.fullmatch(r"  seq=(\d) \d+\.\d{3} ms", line) for line in lines[1:3]]
    assert [m[1] if m else line for m, line in zip(probes, lines[1:3])] == ["0", "1"]
    assert re.fullmatch(r"2 sent, 2 received, 0% loss; rtt min/avg/max [\d.]+/[\d.]+/[\d.]+ ms", lines[3])


def test_ping_json_is_the_api_answer(
    engine: Engine, via: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    username = engine.usernames("static_ip")[0]
    code, out, _ = run(capsys, *via, "ping", username, "--count", "1", "--json")
    body = json.loads(out)
    assert code == 0
    assert (body["customer_id"], body["address"]) == (
        engine.customer_id(username),
        engine.customers[username]["static_ip"],
    )
    assert (body["sent"], body["received"], len(body["replies"])) == (1, 1, 1)


def test_ping_offline_customer_is_one_line_and_nonzero(
    engine: Engine, via: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    username = engine.usernames("pppoe")[1]
    engine.sim.drop_pppoe(username)
    try:
        code, out, err = run(capsys, *via, "ping", username, "--count", "1")
    finally:
        engine.sim.restore_pppoe(username)
    assert (code, out) == (1, "")
    assert (
        err.startswith(f"error: customer '{username}' is not online: no PPPoE session")
        and err.count("\n") == 1
    )


def test_ping_unreachable_router_is_one_line_and_nonzero(
    engine: Engine, via: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    engine.sim.refuse_connections(True)
    try:
        code, out, err = run(capsys, *via, "ping", engine.usernames("pppoe")[0], "--count", "1")
    finally:
        engine.sim.refuse_connections(False)
    assert (code, out) == (1, "")
    assert err.startswith("error: router 'sim-1' unreachable") and err.count("\n") == 1


def test_ping_count_out_of_range_is_refused_naming_count(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["ping", engine.usernames("pppoe")[0], "--count", "21"])
    assert exit_info.value.code == 2
    assert "--count: must be between 1 and 20, got 21" in capsys.readouterr().err


def test_ping_unknown_customer_is_refused(via: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *via, "ping", "nobody.here")
    assert (code, out, err) == (1, "", "error: no customer with username 'nobody.here'\n")
