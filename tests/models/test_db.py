"""Engines: settings decide the URL, secrets stay out of errors, SQLite works end to end."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from models import Customer, Package, Router
from models.db import dispose_shared, make_engine, session_factory, shared_engine
from models.migrate import upgrade
from models.resolution import resolve
from settings import Settings, get_settings, load_settings


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
            assert [(t.kind, t.interface, t.router.host) for t in targets] == [
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


def test_db_shared_engine_is_one_per_database_configuration(tmp_path: Path) -> None:
    def settings(**env: str) -> Settings:
        return load_settings(env, env_file="/nonexistent.env")

    first = settings(DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}")
    same_database = settings(DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}", WEB_PORT="9000")
    other_database = settings(DATABASE_URL=f"sqlite:///{tmp_path / 'b.db'}")
    other_pool = settings(DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}", DB_MAX_OPEN_CONNS="40")
    try:
        engine = shared_engine(first)
        assert shared_engine(same_database) is engine
        assert shared_engine(other_database) is not engine
        assert shared_engine(other_pool) is not engine
    finally:
        dispose_shared()
    try:
        assert shared_engine(first) is not engine  # disposed engines are forgotten
    finally:
        dispose_shared()


POOL_SETTINGS = load_settings(
    {"DB_MAX_OPEN_CONNS": "7", "DB_MAX_IDLE_CONNS": "3", "DB_STATEMENT_TIMEOUT": "0.5"},
    env_file="/nonexistent.env",
)


def _show(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SHOW {name}").scalar()


def test_db_make_engine_takes_pool_and_timeouts_from_settings(pg_url: str) -> None:
    engine = make_engine(pg_url, settings=POOL_SETTINGS)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == 3  # DB_MAX_IDLE_CONNS
        assert engine.pool._max_overflow == 4  # DB_MAX_OPEN_CONNS - DB_MAX_IDLE_CONNS
        assert (_show(engine, "statement_timeout"), _show(engine, "lock_timeout")) == ("500ms", "250ms")
        # The URL's own options (the test schema's search_path) survive ours.
        options = make_url(pg_url).query["options"]
        assert isinstance(options, str) and _show(engine, "search_path") == options.split("=", 1)[1]
    finally:
        engine.dispose()


def test_db_statement_longer_than_the_timeout_fails_instead_of_hanging(pg_url: str) -> None:
    engine = make_engine(pg_url, settings=POOL_SETTINGS)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="canceling statement due to statement timeout"):
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_sleep(30)"))
        assert time.monotonic() - started < 5
        with engine.connect() as conn:  # the pool is still usable afterwards
            assert conn.scalar(text("SELECT 1")) == 1
    finally:
        engine.dispose()


def test_db_lock_wait_longer_than_the_timeout_fails_instead_of_hanging(pg_url: str) -> None:
    engine = make_engine(pg_url, settings=POOL_SETTINGS)
    try:
        with engine.begin() as holder:
            holder.execute(text("INSERT INTO packages (name, download_bps, upload_bps) VALUES ('p', 1, 1)"))
        with engine.begin() as holder:
            holder.execute(text("SELECT * FROM packages FOR UPDATE"))
            started = time.monotonic()
            with pytest.raises(OperationalError, match="canceling statement due to lock timeout"):
                with engine.begin() as waiter:
                    waiter.execute(text("UPDATE packages SET upload_bps = 2"))
            assert time.monotonic() - started < 5
    finally:
        engine.dispose()


def test_db_make_engine_explicit_keywords_win_over_settings(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=2, max_overflow=1, statement_timeout=0.25, settings=POOL_SETTINGS)
    unlimited = make_engine(pg_url, statement_timeout=0, settings=POOL_SETTINGS)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert (engine.pool.size(), engine.pool._max_overflow) == (2, 1)
        assert _show(engine, "statement_timeout") == "250ms"
        assert (_show(unlimited, "statement_timeout"), _show(unlimited, "lock_timeout")) == ("0", "0")
    finally:
        engine.dispose()
        unlimited.dispose()


def test_db_unanswering_server_fails_after_the_connect_timeout() -> None:
    # A socket that completes TCP handshakes (the kernel's backlog) but never speaks.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql://nobody@127.0.0.1:{port}/none", connect_timeout=2)
        try:
            started = time.monotonic()
            with pytest.raises(OperationalError, match="timeout expired"):
                engine.connect()
            assert time.monotonic() - started < 8
        finally:
            engine.dispose()
