"""Importing customers from a router (the simulator): idempotent, operator edits kept."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from models import Router
from models.db import make_engine, session_factory
from models.importer import main as import_main
from models.seed import main as seed_main
from routeros.simulator import Simulator, SimulatorConfig
from routeros.simulator.tls import generate_certificate
from tests.models.db_rows import fetch_rows, fetch_value
from tests.models.simulators import SIM_PASSWORD

REPO = Path(__file__).resolve().parents[2]


def _args(url: str, sim: Simulator, *extra: str) -> list[str]:
    return [
        "--router",
        "mikrotik-001",
        "--host",
        sim.host,
        "--port",
        str(sim.port),
        "--user",
        "admin",
        "--password-env",
        "IMPORT_ROUTER_PASS",
        "--database-url",
        url,
        *extra,
    ]


# Everything the import writes, packages joined, as PostgreSQL prints it.
CUSTOMER_ROWS = (
    "SELECT c.id, c.mikrotik_id, c.username, c.name, c.service_type::text, c.status::text, "
    "c.pppoe_username, c.pppoe_password, c.pppoe_profile, c.hotspot_username, "
    "c.hotspot_password, c.hotspot_mac_address::text, host(c.static_ip), p.name, "
    "p.download_bps, p.upload_bps, c.updated_at "
    "FROM customers c LEFT JOIN packages p ON p.id = c.package_id ORDER BY c.username"
)


def test_importer_twice_from_simulator_gives_same_rows_and_says_so(pg_url: str, simulator: Simulator) -> None:
    env = dict(os.environ, IMPORT_ROUTER_PASS=SIM_PASSWORD)
    command = [sys.executable, "-m", "models.importer", *_args(pg_url, simulator, "--with-passwords")]
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "packages: created=4 updated=0 unchanged=0" in first.stdout
    assert "customers: created=12 updated=0 unchanged=0" in first.stdout
    rows = fetch_rows(pg_url, CUSTOMER_ROWS)

    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "packages: created=0 updated=0 unchanged=4" in second.stdout
    assert "customers: created=0 updated=0 unchanged=12" in second.stdout
    assert fetch_rows(pg_url, CUSTOMER_ROWS) == rows  # updated_at included: nothing was even touched
    assert SIM_PASSWORD not in first.stdout + first.stderr + second.stdout + second.stderr

    # A static customer is known to the router only by its queue: the queue name
    # (JSON "target") becomes the username, the queue comment the name.
    expected = {
        c["target"] if c["service_type"] == "static_ip" else c["username"]: c
        for c in simulator.customers()["customers"]
    }
    packages = {p["name"]: p for p in simulator.customers()["packages"]}
    assert sorted(r[2] for r in rows) == sorted(expected)
    for row in rows:
        c = expected[row[2]]
        assert (row[1], row[4], row[5]) == ("mikrotik-001", c["service_type"], "active")
        assert (row[6], row[7], row[8]) == (c["pppoe_username"], c["pppoe_password"], c["pppoe_profile"])
        assert (row[9], row[10]) == (c["hotspot_username"], c["hotspot_password"])
        assert row[11] == (c["hotspot_mac_address"].lower() if c["hotspot_mac_address"] else None)
        assert row[12] == c["static_ip"]
        # Static queues carry no profile: their package is found by max-limit speeds.
        assert (row[14], row[15]) == (
            packages[c["package"]]["download_bps"],
            packages[c["package"]]["upload_bps"],
        )
        if c["service_type"] != "pppoe":
            assert row[3] == c["name"]  # HotSpot users and queues carry the name as comment


def test_importer_without_with_passwords_stores_no_passwords(
    pg_url: str,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IMPORT_ROUTER_PASS", SIM_PASSWORD)
    assert import_main(_args(pg_url, simulator)) == 0
    assert "customers: created=12 updated=0 unchanged=0" in capsys.readouterr().out
    # The simulator's PPPoE and hotspot customers all have passwords on the router.
    assert all(c["pppoe_password"] or c["hotspot_password"] for c in _router_logins(simulator))
    assert set(_stored_passwords(pg_url).values()) == {(None, None)}


def test_importer_with_passwords_stores_them_and_a_run_without_leaves_them_untouched(
    pg_url: str,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IMPORT_ROUTER_PASS", SIM_PASSWORD)
    assert import_main(_args(pg_url, simulator, "--with-passwords")) == 0
    stored = _stored_passwords(pg_url)
    logins = _router_logins(simulator)
    assert {c["username"]: stored[c["username"]] for c in logins} == {
        c["username"]: (c["pppoe_password"], c["hotspot_password"]) for c in logins
    }
    victim = next(c["username"] for c in logins if c["service_type"] == "pppoe")
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE customers SET pppoe_password = 'stale' WHERE username = :u"), {"u": victim}
            )
    finally:
        engine.dispose()
    capsys.readouterr()

    # Without the flag no password is refreshed (the stale one stays) and none is cleared.
    assert import_main(_args(pg_url, simulator)) == 0
    assert "customers: created=0 updated=0 unchanged=12" in capsys.readouterr().out
    assert _stored_passwords(pg_url) == {**stored, victim: ("stale", None)}


def _stored_passwords(url: str) -> dict[str, tuple[str | None, str | None]]:
    rows = fetch_rows(url, "SELECT username, pppoe_password, hotspot_password FROM customers")
    return {username: (pppoe, hotspot) for username, pppoe, hotspot in rows}


def _router_logins(simulator: Simulator) -> list[dict[str, Any]]:
    """The simulator's customers that log in with a password (PPPoE and hotspot)."""
    return [c for c in simulator.customers()["customers"] if c["service_type"] in ("pppoe", "hotspot")]


def test_importer_keeps_operator_name_and_status_and_restores_router_password(
    pg_url: str,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IMPORT_ROUTER_PASS", SIM_PASSWORD)
    assert import_main(_args(pg_url, simulator, "--with-passwords")) == 0
    victim = next(c for c in simulator.customers()["customers"] if c["service_type"] == "pppoe")
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE customers SET name = 'Edited Name', status = 'suspended', "
                    "pppoe_password = 'stale' WHERE username = :u"
                ),
                {"u": victim["username"]},
            )
        capsys.readouterr()
        assert import_main(_args(pg_url, simulator, "--with-passwords")) == 0
        out = capsys.readouterr().out
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT name, status::text, pppoe_password FROM customers WHERE username = :u"),
                {"u": victim["username"]},
            ).one()
    finally:
        engine.dispose()
    assert "customers: created=0 updated=1 unchanged=11" in out
    assert tuple(row) == ("Edited Name", "suspended", victim["pppoe_password"])


def test_importer_after_seed_from_json_finds_everything_unchanged(
    pg_url: str,
    simulator: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    path = tmp_path / "customers.json"
    path.write_text(json.dumps(simulator.customers()))
    monkeypatch.setenv("IMPORT_ROUTER_PASS", SIM_PASSWORD)
    assert (
        seed_main(
            [
                "--customers-json",
                str(path),
                "--mikrotik-id",
                "mikrotik-001",
                "--database-url",
                pg_url,
                "--router-password-env",
                "IMPORT_ROUTER_PASS",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # No --host/--port: the routers row the seed wrote says where the router is.
    assert import_main(["--router", "mikrotik-001", "--database-url", pg_url]) == 0
    captured = capsys.readouterr()
    assert "(routers table)" in captured.err
    assert "customers: created=0 updated=0 unchanged=12" in captured.out


def test_importer_wrong_password_exits_nonzero_without_printing_it(
    pg_url: str,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IMPORT_ROUTER_PASS", "Wr0ng-Secret-Value")
    with pytest.raises(SystemExit) as exit_info:
        import_main(_args(pg_url, simulator))
    captured = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "error: router mikrotik-001" in captured.err and "LoginError" in captured.err
    assert "Wr0ng-Secret-Value" not in captured.out + captured.err


def test_importer_unreachable_router_exits_nonzero(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("IMPORT_ROUTER_PASS", "x")
    with pytest.raises(SystemExit) as exit_info:
        import_main(
            [
                "--router",
                "mikrotik-001",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--timeout",
                "2",
                "--password-env",
                "IMPORT_ROUTER_PASS",
                "--database-url",
                pg_url,
            ]
        )
    assert exit_info.value.code == 1
    assert "UnreachableError" in capsys.readouterr().err


def test_importer_unset_password_variable_is_a_clear_error(
    pg_url: str,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("IMPORT_ROUTER_PASS", raising=False)
    with pytest.raises(SystemExit):
        import_main(_args(pg_url, simulator))
    assert (
        "--password-env IMPORT_ROUTER_PASS: that environment variable is not set" in capsys.readouterr().err
    )


@pytest.fixture(scope="module")
def tls_simulator() -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(pppoe=3, hotspot=1, static=1, seed=11, password=SIM_PASSWORD, tls=True))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def _tls_router(url: str, sim: Simulator, tls_ca: str | None) -> None:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with session_factory(engine).begin() as session:
            session.add(
                Router(
                    id="mikrotik-tls",
                    name="core-tls",
                    host=sim.host,
                    port=sim.ssl_port,
                    username="admin",
                    password=SIM_PASSWORD,
                    tls=True,
                    tls_mode="verify",
                    tls_ca=tls_ca,
                )
            )
    finally:
        engine.dispose()


def _other_ca(directory: Path) -> str:
    """A CA that did not sign the simulator's certificate (same host names)."""
    directory.mkdir()
    cert, _key = generate_certificate(str(directory), ["127.0.0.1"])
    return cert


def test_importer_over_api_ssl_verifies_with_the_routers_own_ca(
    pg_url: str, tls_simulator: Simulator
) -> None:
    assert tls_simulator.cafile is not None
    _tls_router(pg_url, tls_simulator, tls_simulator.cafile)
    result = subprocess.run(
        [sys.executable, "-m", "models.importer", "--router", "mikrotik-tls", "--database-url", pg_url],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"importing from admin@{tls_simulator.host}:{tls_simulator.ssl_port} (routers table)" in result.stderr
    )
    assert "customers: created=5 updated=0 unchanged=0" in result.stdout
    assert SIM_PASSWORD not in result.stdout + result.stderr


def test_importer_over_api_ssl_with_a_wrong_ca_fails_clearly(
    pg_url: str, tls_simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tls_router(pg_url, tls_simulator, _other_ca(tmp_path / "other-ca"))
    with pytest.raises(SystemExit) as exit_info:
        import_main(["--router", "mikrotik-tls", "--database-url", pg_url])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert "error: router mikrotik-tls" in err and "not trusted" in err
    assert "the CA came from routers.tls_ca" in err
    assert fetch_value(pg_url, "SELECT count(*) FROM customers") == 0

    # --cafile overrides the router's CA.
    assert tls_simulator.cafile is not None
    args = ["--router", "mikrotik-tls", "--cafile", tls_simulator.cafile, "--database-url", pg_url]
    assert import_main(args) == 0
    assert "customers: created=5" in capsys.readouterr().out


def test_importer_over_api_ssl_with_a_missing_ca_file_names_it(
    pg_url: str, tls_simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "gone" / "ca.pem")
    _tls_router(pg_url, tls_simulator, missing)
    with pytest.raises(SystemExit) as exit_info:
        import_main(["--router", "mikrotik-tls", "--database-url", pg_url])
    assert exit_info.value.code == 1
    assert (
        f"error: the router's CA file {missing!r} (routers.tls_ca) does not exist or is not a file"
        in capsys.readouterr().err
    )


def test_importer_over_api_ssl_with_a_ca_file_that_is_not_pem_names_it(
    pg_url: str, tls_simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("this is not a certificate\n", encoding="ascii")
    _tls_router(pg_url, tls_simulator, str(garbage))
    with pytest.raises(SystemExit) as exit_info:
        import_main(["--router", "mikrotik-tls", "--database-url", pg_url])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"cannot load the CA file {str(garbage)!r}" in err and "(the CA came from routers.tls_ca)" in err
