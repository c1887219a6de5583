"""Engines: settings decide the URL, secrets stay out of errors, SQLite works end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from models import Customer, Package, Router
from models.db import make_engine, session_factory
from models.migrate import upgrade
from models.resolution import resolve
from settings import get_settings


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "absent.env"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_db_make_engine_defaults_to_settings_database_url(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "nested" / "monitor.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{target}")
    engine = make_engine()
    try:
        assert engine.url.database == str(target)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert target.exists()  # the parent directory was created for the embedded file
    finally:
        engine.dispose()


def test_db_postgresql_errors_hide_statement_parameters(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
            for _ in range(2):
                conn.execute(
                    text("INSERT INTO routers (id, name, host, password) VALUES ('r1', 'r', 'h', :p)"),
                    {"p": "Top-Secret-Router-Pass"},
                )
        assert "Top-Secret-Router-Pass" not in str(caught.value)
    finally:
        engine.dispose()


def test_db_sqlite_demo_path_stores_and_resolves_every_service_type(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    try:
        with factory.begin() as s:
            package = Package(name="home-10M", download_bps=10_000_000, upload_bps=5_000_000)
            s.add_all([package, Router(id="mikrotik-001", name="core", host="10.9.0.1", password="pw")])
            s.flush()
            rows = [
                Customer(
                    mikrotik_id="mikrotik-001",
                    username="budi",
                    name="Budi",
                    service_type="pppoe",
                    pppoe_username="budi",
                    status="active",
                    package_id=package.id,
                ),
                Customer(
                    mikrotik_id="mikrotik-001",
                    username="sari",
                    name="Sari",
                    service_type="hotspot",
                    hotspot_username="sari",
                    hotspot_mac_address="AA:BB:CC:DD:EE:FF",
                    status="active",
                ),
                Customer(
                    mikrotik_id="mikrotik-001",
                    username="toko",
                    name="Toko",
                    service_type="static_ip",
                    static_ip="10.20.0.7",
                    status="active",
                ),
            ]
            s.add_all(rows)
        with factory() as s:
            targets = [resolve(s, row.id) for row in rows]
            assert [(t.kind, t.interface, t.host) for t in targets] == [
                ("interface", "<pppoe-budi>", "10.9.0.1"),
                ("queue", "<hotspot-sari>", "10.9.0.1"),
                ("queue-by-target", "10.20.0.7/32", "10.9.0.1"),
            ]
            assert targets[0].package_name == "home-10M"
        with pytest.raises(IntegrityError), engine.begin() as conn:
            # Foreign keys are enforced on SQLite too (PRAGMA foreign_keys=ON per connection).
            conn.execute(text("UPDATE customers SET package_id = 999 WHERE username = 'budi'"))
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE customers SET service_type = 'dsl' WHERE username = 'budi'"))
    finally:
        engine.dispose()
