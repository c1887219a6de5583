"""tasks.cli: the operator command line over the service functions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from harness.polling import wait_for
from harness.seed import ROUTER_ID
from models import Customer
from tasks import cli, sessions
from tests.tasks.conftest import Engine


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=4, hotspot=0, static=0, MAX_CONCURRENT_MONITORS="3")
    eng.start_worker("monitors", concurrency=4, name="cli-mon")
    yield eng


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_customer_reference_by_id_username_or_router_prefix(engine: Engine) -> None:
    username = engine.usernames("pppoe")[0]
    cid = engine.customer_id(username)
    assert cli.customer_id_for(username) == cid
    assert cli.customer_id_for(f"{ROUTER_ID}/{username}") == cid
    assert cli.customer_id_for(cid.upper()) == cid


def test_cli_customer_reference_unknown_or_ambiguous_is_refused(engine: Engine) -> None:
    with pytest.raises(cli.CliError, match="no customer with username 'nobody'"):
        cli.customer_id_for("nobody")
    username = engine.usernames("pppoe")[1]
    with sessions.db() as s:
        s.add(
            Customer(
                id=uuid.uuid4(),
                mikrotik_id="mikrotik-002",
                username=username,
                name="Same Name Elsewhere",
                service_type="pppoe",
                pppoe_username=username,
                status="active",
            )
        )
    with pytest.raises(cli.CliError, match=f"several routers .*mikrotik-002, {ROUTER_ID}"):
        cli.customer_id_for(username)
    assert cli.customer_id_for(f"{ROUTER_ID}/{username}") == engine.customer_id(username)


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
            f"{sys.executable} -m tasks.cli tail --customer {cid} --from 0 --seconds 20 | head -n 1",
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
