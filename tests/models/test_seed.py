"""Seeding from the simulator's customers JSON: idempotent, all or nothing, quiet about secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from models import Router
from models.db import make_engine, session_factory
from models.seed import main as seed_main
from routeros.simulator import Simulator
from tests.models.db_rows import fetch_rows, fetch_value

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def customers_json(simulator: Simulator, tmp_path: Path) -> Path:
    path = tmp_path / "customers.json"
    path.write_text(json.dumps(simulator.customers()), encoding="utf-8")
    return path


# What the seed writes, packages joined, as PostgreSQL prints it.
CUSTOMER_ROWS = (
    "SELECT c.id, c.username, c.name, c.service_type::text, c.status::text, "
    "host(c.static_ip), c.hotspot_mac_address::text, c.pppoe_password, p.name, c.updated_at "
    "FROM customers c LEFT JOIN packages p ON p.id = c.package_id ORDER BY c.username"
)


def _seed(url: str, path: Path, *extra: str) -> list[str]:
    return ["--customers-json", str(path), "--mikrotik-id", "mikrotik-001", "--database-url", url, *extra]


def test_seed_from_json_creates_then_reports_unchanged(
    pg_url: str,
    customers_json: Path,
    simulator: Simulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEED_ROUTER_PASS", "sim-Pa55-word")
    assert seed_main(_seed(pg_url, customers_json, "--router-password-env", "SEED_ROUTER_PASS")) == 0
    first = capsys.readouterr()
    assert "router mikrotik-001: created" in first.out
    assert "packages: created=4 updated=0 unchanged=0" in first.out
    assert "customers: created=12 updated=0 unchanged=0" in first.out
    rows = fetch_rows(pg_url, CUSTOMER_ROWS)

    assert seed_main(_seed(pg_url, customers_json, "--router-password-env", "SEED_ROUTER_PASS")) == 0
    second = capsys.readouterr()
    assert "router mikrotik-001: unchanged" in second.out
    assert "customers: created=0 updated=0 unchanged=12" in second.out
    assert fetch_rows(pg_url, CUSTOMER_ROWS) == rows
    assert "sim-Pa55-word" not in first.out + first.err + second.out + second.err

    expected = {c["username"]: c for c in simulator.customers()["customers"]}
    by_name = {r[1]: r for r in rows}
    assert by_name.keys() == expected.keys()
    for username, row in by_name.items():
        c = expected[username]
        assert (row[3], row[4], row[8]) == (c["service_type"], "active", c["package"])
        assert row[5] == c["static_ip"]
    engine = make_engine(pg_url)
    with session_factory(engine)() as session:
        router = session.get(Router, "mikrotik-001")
        assert router is not None
        assert (router.host, router.port, router.password.get()) == (
            simulator.host,
            simulator.port,
            "sim-Pa55-word",
        )
    engine.dispose()


def test_seed_bad_customer_refused_and_nothing_written(
    pg_url: str, customers_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(customers_json.read_text())
    data["customers"][-1]["mac_address"] = "02:zz:00:00:00:01"
    customers_json.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as exit_info:
        seed_main(_seed(pg_url, customers_json))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"customers[{len(data['customers']) - 1}]" in err
    assert "invalid mac_address '02:zz:00:00:00:01'" in err and "nothing was written" in err
    counts = [fetch_value(pg_url, f"SELECT count(*) FROM {t}") for t in ("customers", "packages", "routers")]
    assert counts == [0, 0, 0]


def test_seed_cli_malformed_json_exits_nonzero(pg_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"packages": [], "customers": [', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "models.seed", *_seed(pg_url, bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {bad}: not valid JSON")


def test_seed_operator_edits_to_name_and_status_survive_a_reseed(
    pg_url: str, customers_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed_main(_seed(pg_url, customers_json)) == 0
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            username = conn.scalar(
                text("SELECT username FROM customers WHERE service_type = 'pppoe' ORDER BY username LIMIT 1")
            )
            conn.execute(
                text(
                    "UPDATE customers SET name = 'Renamed By Operator', status = 'suspended', "
                    "phone = '+62 811', pppoe_password = 'stale' WHERE username = :u"
                ),
                {"u": username},
            )
        capsys.readouterr()
        assert seed_main(_seed(pg_url, customers_json)) == 0
        out = capsys.readouterr().out
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT name, status::text, phone, pppoe_password FROM customers WHERE username = :u"),
                {"u": username},
            ).one()
    finally:
        engine.dispose()
    assert row[:3] == ("Renamed By Operator", "suspended", "+62 811")
    assert row[3] != "stale"  # the source owns the password: restored
    assert "customers: created=0 updated=1 unchanged=11" in out


def _stored_ca(url: str) -> str | None:
    value = fetch_value(url, "SELECT tls_ca FROM routers WHERE id = 'mikrotik-001'")
    assert value is None or isinstance(value, str)
    return value


def test_seed_router_tls_ca_file_stored_as_absolute_path(
    pg_url: str,
    customers_json: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "ca.pem").write_text("not read by the seed", encoding="ascii")
    monkeypatch.chdir(tmp_path)
    assert seed_main(_seed(pg_url, customers_json, "--router-tls", "--router-tls-ca", "ca.pem")) == 0
    assert _stored_ca(pg_url) == str(tmp_path / "ca.pem")
    capsys.readouterr()
    assert seed_main(_seed(pg_url, customers_json, "--router-tls", "--router-tls-ca", "ca.pem")) == 0
    assert "router mikrotik-001: unchanged" in capsys.readouterr().out


def test_seed_router_tls_ca_pem_text_reseeds_unchanged(
    pg_url: str, customers_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----"  # as "$(cat ca.pem)" gives it
    assert seed_main(_seed(pg_url, customers_json, "--router-tls-ca", pem)) == 0
    assert _stored_ca(pg_url) == pem + "\n"
    capsys.readouterr()
    assert seed_main(_seed(pg_url, customers_json, "--router-tls-ca", pem)) == 0
    assert "router mikrotik-001: unchanged" in capsys.readouterr().out


def test_seed_router_tls_ca_missing_file_refused(
    pg_url: str, customers_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(SystemExit) as exit_info:
        seed_main(_seed(pg_url, customers_json, "--router-tls-ca", str(missing)))
    assert exit_info.value.code == 1
    assert f"error: --router-tls-ca {missing}: no such file" in capsys.readouterr().err


def test_seed_router_encoding_stored_by_codec_name_and_reseeds_unchanged(
    pg_url: str, customers_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed_main(_seed(pg_url, customers_json)) == 0
    assert fetch_value(pg_url, "SELECT encoding FROM routers WHERE id = 'mikrotik-001'") == "utf-8"
    assert seed_main(_seed(pg_url, customers_json, "--router-encoding", "Windows-1252")) == 0
    assert fetch_value(pg_url, "SELECT encoding FROM routers WHERE id = 'mikrotik-001'") == "cp1252"
    capsys.readouterr()
    assert seed_main(_seed(pg_url, customers_json, "--router-encoding", "cp1252")) == 0
    assert "router mikrotik-001: unchanged" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        seed_main(_seed(pg_url, customers_json, "--router-encoding", "utf-16"))
    assert "invalid encoding 'utf-16'" in capsys.readouterr().err
