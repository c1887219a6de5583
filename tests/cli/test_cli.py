"""cli (`mtmon`): the operator command line, against the database and Redis."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import cli
from cli.backends import CliError, LocalBackend
from harness.polling import wait_for
from harness.seed import ROUTER_ID
from tasks import sessions
from tests.tasks.engine import Engine
from tests.tasks.rows import add_pppoe_customer

customer_id_for = LocalBackend().customer_id


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=6, hotspot=0, static=0, MAX_CONCURRENT_MONITORS="3")
    eng.start_worker("monitors", concurrency=4, name="cli-mon")
    yield eng


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_customer_reference_by_id_username_or_router_prefix(engine: Engine) -> None:
    username = engine.usernames("pppoe")[0]
    cid = engine.customer_id(username)
    assert customer_id_for(username) == cid
    assert customer_id_for(f"{ROUTER_ID}/{username}") == cid
    assert customer_id_for(cid.upper()) == cid


def test_cli_customer_reference_unknown_or_ambiguous_is_refused(engine: Engine) -> None:
    with pytest.raises(CliError, match="no customer with username 'nobody'"):
        customer_id_for("nobody")
    username = engine.usernames("pppoe")[1]
    add_pppoe_customer("mikrotik-002", username, "Same Name Elsewhere")
    with pytest.raises(CliError, match=f"several routers .*mikrotik-002, {ROUTER_ID}"):
        customer_id_for(username)
    assert customer_id_for(f"{ROUTER_ID}/{username}") == engine.customer_id(username)


def test_cli_start_tail_status_stop_round_trip(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    username = engine.usernames("pppoe")[2]
    code, out, err = _run(capsys, "start", username, "--by", "noc-anna")
    assert (code, err) == (0, "")
    assert out.startswith("started: session ")
    code, out, _ = _run(capsys, "start", username)
    assert code == 0 and out.startswith("already running: session ")

    code, out, _ = _run(capsys, "tail", "--customer", username, "--from", "0", "--json", "--seconds", "2.5")
    messages = [json.loads(line) for line in out.splitlines()]
    kinds = [m["type"] for m in messages]
    assert code == 0 and kinds[0] == "started" and "traffic" in kinds
    sample = next(m for m in messages if m["type"] == "traffic")
    assert sample["username"] == username
    assert sample["download_bps"] == int(sample["tx_bits_per_second"])  # pppoe: tx = download

    code, out, _ = _run(capsys, "status", "--json")
    state = json.loads(out)
    assert code == 0 and state["monitor_count"] == 1 and state["max_concurrent"] == 3
    assert state["monitors"][0]["username"] == username
    for moment in ("created_at", "started_at"):  # as the REST API writes them (tasks.timestamps.iso)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", state["monitors"][0][moment])

    code, out, _ = _run(capsys, "stop", username, "--by", "noc-anna")
    assert code == 0 and out.startswith("stopping: session ")
    cid = engine.customer_id(username)
    wait_for(lambda: sessions.open_for_customer(cid) is None, 5.0, "the session to close")
    code, out, _ = _run(capsys, "tail", "--customer", username, "--from", "0", "--seconds", "0.5")
    assert "stopped (stopped by noc-anna)" in out.splitlines()[-1]


def test_cli_refusals_are_one_line_and_nonzero(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "start", "nobody")
    assert (code, out) == (1, "") and err == "error: no customer with username 'nobody'\n"
    code, _, err = _run(capsys, "stop", engine.usernames("pppoe")[3])
    assert code == 1 and err.startswith("error: customer ") and "is not being monitored" in err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2


def test_cli_tail_into_a_closed_pipe_ends_quietly(engine: Engine) -> None:
    import subprocess
    import sys

    from harness.process import ROOT
    from tasks import service

    cid = engine.customer_id(engine.usernames("pppoe")[3])
    service.start(cid, requested_by="test")
    try:
        # `tail | head -1`: head exits after one line and the pipe closes under tail.
        done = subprocess.run(
            f"{sys.executable} -m cli tail --customer {cid} --from 0 --seconds 20 | head -n 1",
            shell=True,
            cwd=ROOT,
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0
        assert len(done.stdout.splitlines()) == 1
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    finally:
        service.stop(cid, requested_by="test")


def test_cli_customers_search_and_filters(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    username = engine.usernames("pppoe")[4]
    code, out, _ = _run(capsys, "customers", username[:6], "--json")
    page = json.loads(out)
    assert code == 0 and username in [c["username"] for c in page["customers"]]
    assert all(username[:6].lower() in json.dumps(c).lower() for c in page["customers"])
    code, out, _ = _run(capsys, "customers", "--router", ROUTER_ID, "--service-type", "pppoe", "--limit", "2")
    lines = out.splitlines()
    assert (
        code == 0
        and len(lines) == 3
        and lines[-1] == f"2 of {len(engine.usernames('pppoe'))} customers (* monitored)"
    )


def test_cli_watch_prints_rates_and_a_sparkline(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    from tasks import service

    username = engine.usernames("pppoe")[4]
    service.start(engine.customer_id(username), requested_by="test")
    try:
        code, out, _ = _run(capsys, "watch", username, "--seconds", "3.5")
    finally:
        service.stop(engine.customer_id(username), requested_by="test")
    samples = [line for line in out.splitlines() if " down " in line]
    assert code == 0 and len(samples) >= 2, out
    assert "bps" in samples[-1] and any(ch in samples[-1] for ch in cli.SPARK)


def test_cli_check_router_reports_what_an_operator_needs(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "check-router", ROUTER_ID)
    assert (code, err) == (0, ""), out
    assert "identity: " in out and "version: 7." in out and "uptime" in out
    assert "API sessions: " in out and " of 20 in use (api)" in out
    assert "API-SSL: disabled on the router" in out  # this simulator serves no TLS port
    assert "monitor-traffic on " in out and ": ok (router receives" in out
    code, _, err = _run(capsys, "check-router", "no-such-router")
    assert code == 1 and err.startswith("error: cannot log in to no-such-router")


def test_cli_hands_import_and_simulator_their_own_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("import", "simulator"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_cli_import_takes_the_router_as_its_argument(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    # The engine's customers were seeded from this simulator: importing finds them all.
    code, out, err = _run(capsys, "import", ROUTER_ID)
    assert code == 0, err
    assert f"customers: created=0 updated=0 unchanged={len(engine.customers)}" in out, out
    with pytest.raises(SystemExit) as exit_info:  # the importer's own exit, as the console script's
        cli.main(["import", "no-such-router"])
    assert exit_info.value.code == 1
    assert "error: router no-such-router" in capsys.readouterr().err


def test_cli_token_prints_a_token_the_settings_accept(tmp_path: Path) -> None:
    """Needs nothing configured: run where no setting is valid, the way a new operator runs it."""
    import os
    import subprocess
    import sys

    from harness.process import ROOT
    from settings import load_settings

    env = {**os.environ, "MIKROTIK_PORT": "not-a-port", "ENV_FILE": str(tmp_path / "none.env")}
    done = [
        subprocess.run(
            [sys.executable, "-m", "cli", "token"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for _ in range(2)
    ]
    tokens = [d.stdout.strip() for d in done]
    assert [d.returncode for d in done] == [0, 0] and tokens[0] != tokens[1]
    assert len(tokens[0]) >= 43 and tokens[0].replace("-", "").replace("_", "").isalnum()
    assert load_settings({"API_TOKEN": tokens[0]}, tmp_path / "none.env").api_token.get() == tokens[0]
