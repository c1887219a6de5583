"""Alembic from the repository root, on PostgreSQL and SQLite, online and --sql."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Enum, create_engine, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator

from harness.pg import migrated_schema
from models import Base
from models.customer import SEARCHED_COLUMNS
from models.db import make_engine
from models.migrate import downgrade, upgrade

REPO = Path(__file__).resolve().parents[2]
ALEMBIC = str(Path(sys.executable).with_name("alembic"))
TABLES = {
    "customers",
    "routers",
    "packages",
    "monitor_sessions",
    "session_reports",
    "alert_rules",
    "webhooks",
    "alert_deliveries",
    "alerts",
    "alembic_version",
}


def _run_alembic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ALEMBIC, *args],
        cwd=REPO,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrations_postgresql_upgrade_builds_types_tables_indexes_and_triggers(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            assert set(insp.get_table_names()) >= TABLES
            types = set(
                conn.scalars(
                    text(
                        "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                        "WHERE n.nspname = current_schema() AND typtype = 'e'"
                    )
                )
            )
            assert types == {"service_type", "customer_status"}
            labels = list(conn.scalars(text("SELECT unnest(enum_range(NULL::customer_status))::text")))
            assert labels == ["active", "suspended", "inactive", "pending"]
            indexes = {i["name"] for i in insp.get_indexes("customers") if not i.get("duplicates_constraint")}
            assert indexes == {
                # the seed's
                "idx_customers_mikrotik_id",
                "idx_customers_username",
                "idx_customers_pppoe",
                "idx_customers_hotspot",
                "idx_customers_service_type",
                "idx_customers_status",
                "idx_customers_mac",
                # 0002's
                "ix_customers_static_ip",
                "ix_customers_package_id",
                # 0010's: the list's order and the search's trigram indexes
                "ix_customers_name_id",
                *(f"ix_customers_{c}_trgm" for c in SEARCHED_COLUMNS),
            }
            uniques = {u["name"]: tuple(u["column_names"]) for u in insp.get_unique_constraints("customers")}
            assert uniques == {
                "customers_mikrotik_id_username_key": ("mikrotik_id", "username"),
                "customers_mikrotik_id_pppoe_username_key": ("mikrotik_id", "pppoe_username"),
                "customers_mikrotik_id_hotspot_username_key": ("mikrotik_id", "hotspot_username"),
            }
            open_index = conn.scalar(
                text(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                    "AND indexname = 'uq_monitor_sessions_open_customer'"
                )
            )
            assert "UNIQUE" in open_index and "WHERE" in open_index and "running" in open_index
            triggers = set(
                conn.scalars(
                    text(
                        "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND NOT tgisinternal"
                    )
                )
            )
            assert triggers == {
                f"update_{t}_updated_at"
                for t in (
                    "customers",
                    "routers",
                    "packages",
                    "monitor_sessions",
                    "alert_rules",
                    "webhooks",
                    "alert_deliveries",
                    "alerts",
                )
            }
    finally:
        engine.dispose()


def test_migrations_postgresql_models_match_migrated_schema(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_migrations_postgresql_model_enum_types_match_database(pg_url: str) -> None:
    # compare_metadata does not compare enum type names or labels: check them here.
    in_models = set()
    for table in Base.metadata.tables.values():
        for column in table.columns:
            kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
            if isinstance(kind, Enum) and kind.native_enum:
                in_models.add((kind.name, tuple(kind.enums)))
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            in_database = {
                (name, tuple(labels))
                for name, labels in conn.execute(
                    text(
                        "SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) "
                        "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                        "JOIN pg_namespace n ON n.oid = t.typnamespace "
                        "WHERE n.nspname = current_schema() GROUP BY 1"
                    )
                )
            }
    finally:
        engine.dispose()
    assert (
        in_models
        == in_database
        == {
            ("service_type", ("pppoe", "hotspot", "static_ip")),
            ("customer_status", ("active", "suspended", "inactive", "pending")),
        }
    )


def test_migrations_postgresql_downgrade_base_leaves_nothing_behind() -> None:
    with migrated_schema() as url:
        downgrade(url, "base")
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) == {"alembic_version"}
                leftovers = conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                        "WHERE n.nspname = current_schema() AND typtype = 'e'"
                    )
                )
                functions = conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = current_schema()"
                    )
                )
            assert (leftovers, functions) == (0, 0)
        finally:
            engine.dispose()
        upgrade(url)  # and back up again: the downgrade really was clean


def _insert_without_status(conn: Connection, username: str) -> str:
    """Insert a customer the way an outside writer might, status left out; its status."""
    conn.execute(
        text(
            "INSERT INTO customers (id, mikrotik_id, username, name, service_type) "
            "VALUES (:id, 'r1', :username, 'Raw Insert', 'pppoe')"
        ),
        {"id": uuid.uuid4().hex, "username": username},
    )
    status = conn.scalar(text("SELECT status FROM customers WHERE username = :u"), {"u": username})
    assert isinstance(status, str)
    return status


def test_migrations_postgresql_insert_without_status_gets_inactive(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert _insert_without_status(conn, "raw") == "inactive"  # the seed's newest default
    finally:
        engine.dispose()


def test_migrations_postgresql_downgrade_0004_restores_the_active_default() -> None:
    with migrated_schema() as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                assert _insert_without_status(conn, "at-head") == "inactive"
            downgrade(url, "0004")
            with engine.begin() as conn:
                assert _insert_without_status(conn, "at-0004") == "active"
            upgrade(url)
            with engine.begin() as conn:
                assert _insert_without_status(conn, "back-at-head") == "inactive"
                rows = conn.execute(text("SELECT username, status::text FROM customers")).all()
            statuses = {str(username): str(status) for username, status in rows}
            # Only the default moves: rows keep the status they were given.
            assert statuses == {"at-head": "inactive", "at-0004": "active", "back-at-head": "inactive"}
        finally:
            engine.dispose()


def test_migrations_sqlite_status_default_change_keeps_rows_sessions_and_constraints(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old-demo.db'}"
    # From 0003 the upgrade runs 0004 and 0005 in one transaction, as for an older
    # demo database: PRAGMA foreign_keys=OFF would do nothing there.
    upgrade(url, "0003")
    engine = make_engine(url)  # foreign keys on, as every connection of ours has them
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO packages (name, download_bps, upload_bps) VALUES ('p', 1, 1)"))
            customer = uuid.uuid4().hex
            conn.execute(
                text(
                    "INSERT INTO customers (id, mikrotik_id, username, name, service_type, package_id) "
                    "VALUES (:id, 'r1', 'old', 'Old', 'pppoe', 1)"
                ),
                {"id": customer},
            )
            conn.execute(
                text("INSERT INTO monitor_sessions (id, customer_id, router_id) VALUES (:id, :c, 'r1')"),
                {"id": uuid.uuid4().hex, "c": customer},
            )
        upgrade(url)
        with engine.begin() as conn:
            assert conn.scalar(text("SELECT status FROM customers WHERE username = 'old'")) == "active"
            assert conn.scalar(text("SELECT count(*) FROM monitor_sessions")) == 1  # not cascaded away
            assert _insert_without_status(conn, "new") == "inactive"
        with engine.begin() as conn:
            keys = conn.exec_driver_sql("PRAGMA foreign_key_list(customers)").all()
            assert [(k[2], k[3], k[6]) for k in keys] == [("packages", "package_id", "SET NULL")]
            indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(customers)")}
            assert {"idx_customers_status", "ix_customers_package_id", "ix_customers_static_ip"} <= indexes
        with pytest.raises(IntegrityError), engine.begin() as conn:  # the enum's CHECK survived
            conn.execute(text("UPDATE customers SET status = 'gone' WHERE username = 'old'"))
        downgrade(url, "0004")
        with engine.begin() as conn:
            assert _insert_without_status(conn, "after-downgrade") == "active"
            assert conn.scalar(text("SELECT count(*) FROM monitor_sessions")) == 1
    finally:
        engine.dispose()


def test_migrations_sqlite_upgrade_downgrade_upgrade_roundtrip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
            columns = {c["name"] for c in inspect(conn).get_columns("customers")}
            assert {"package_id", "interface_name", "queue_name", "static_ip"} <= columns
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            # SQLite reflection loses the name and ON DELETE of an inline REFERENCES
            # (added by ALTER TABLE ADD COLUMN), so compare that key through the pragma.
            # The search's trigram indexes are PostgreSQL's only (models/customer.py, ddl_if).
            diffs = [
                d
                for d in compare_metadata(context, Base.metadata)
                if not (d[0] in ("add_fk", "remove_fk") and d[1].column_keys == ["package_id"])
                and not (d[0] == "add_index" and d[1].name.endswith("_trgm"))
            ]
            assert diffs == []
            keys = conn.exec_driver_sql("PRAGMA foreign_key_list(customers)").all()
            assert [(k[2], k[3], k[6]) for k in keys] == [("packages", "package_id", "SET NULL")]
        downgrade(url, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"alembic_version"}
        upgrade(url)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_migrations_cli_from_repo_root_takes_url_from_database_url(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db}", ENV_FILE=str(tmp_path / "none.env"))
    result = _run_alembic("upgrade", "head", env=env)
    assert result.returncode == 0, result.stderr
    current = _run_alembic("current", env=env)
    assert "0010 (head)" in current.stdout
    back = _run_alembic("downgrade", "base", env=env)
    assert back.returncode == 0, back.stderr


def test_migrations_offline_sql_has_create_type_table_trigger() -> None:
    result = _run_alembic("-x", "url=postgresql://operator@db.invalid/isp", "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    sql = result.stdout
    assert "CREATE TYPE service_type AS ENUM ('pppoe', 'hotspot', 'static_ip')" in sql
    assert "CREATE TYPE customer_status AS ENUM ('active', 'suspended', 'inactive', 'pending')" in sql
    for table in ("customers", "routers", "packages", "monitor_sessions", "session_reports"):
        assert f"CREATE TABLE {table} (" in sql
    assert "CREATE TRIGGER update_customers_updated_at" in sql
    assert "CREATE UNIQUE INDEX uq_monitor_sessions_open_customer" in sql
    # 0010 offline: the extension, and the operator class as the reader's search_path finds it
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm;" in sql
    assert "CREATE INDEX ix_customers_name_trgm ON customers USING gin (name gin_trgm_ops)" in sql
    assert sql.rstrip().endswith("COMMIT;")


def test_migrations_migrate_command_prints_sqlite_sql() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "models.migrate", "--sql", "--database-url", "sqlite:///unused.db"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE customers" in result.stdout
    assert "CREATE TYPE" not in result.stdout  # SQLite: enums are CHECKs
    assert "CHECK (service_type IN ('pppoe', 'hotspot', 'static_ip'))" in result.stdout


def _insert_report(conn: Connection, session_id: str, customer_id: str) -> None:
    conn.execute(
        text(
            "INSERT INTO session_reports (session_id, customer_id, username, customer_name, router, "
            "interface, started_at, ended_at, duration_s, interval_s, samples, missing_s, stop_reason, "
            "partial, download_bytes, upload_bytes, rtt_probes, rtt_answered) VALUES (:s, :c, 'u', 'U', "
            "'r1', 'if', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, 1, 0, 0, 'stopped', false, 0, 0, 0, 0)"
        ),
        {"s": session_id, "c": customer_id},
    )


def test_migrations_postgresql_session_reports_go_with_their_session_and_downgrade_0005() -> None:
    with migrated_schema() as url:
        engine = create_engine(url)
        try:
            customer, session = str(uuid.uuid4()), str(uuid.uuid4())
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO customers (id, mikrotik_id, username, name, service_type) "
                        "VALUES (:id, 'r1', 'rep', 'Rep', 'pppoe')"
                    ),
                    {"id": customer},
                )
                conn.execute(
                    text("INSERT INTO monitor_sessions (id, customer_id, router_id) VALUES (:id, :c, 'r1')"),
                    {"id": session, "c": customer},
                )
                _insert_report(conn, session, customer)
            with pytest.raises(IntegrityError), engine.begin() as conn:  # the verdict's CHECK
                conn.execute(text("UPDATE session_reports SET verdict = 'slow'"))
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM customers"))  # cascades through the session
                assert conn.scalar(text("SELECT count(*) FROM session_reports")) == 0
            downgrade(url, "0005")
            with engine.connect() as conn:
                assert "session_reports" not in inspect(conn).get_table_names()
            upgrade(url)
            with engine.connect() as conn:
                indexes = {i["name"] for i in inspect(conn).get_indexes("session_reports")}
                assert indexes == {"ix_session_reports_customer_id_started_at"}
        finally:
            engine.dispose()


def test_migrations_postgresql_search_indexes_downgrade_and_upgrade_keep_the_extension() -> None:
    def state(url: str) -> tuple[set[str], str | None]:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                names = set(
                    conn.scalars(
                        text(
                            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                            "AND tablename = 'customers' "
                            "AND (indexname LIKE '%\\_trgm' OR indexname = 'ix_customers_name_id')"
                        )
                    )
                )
                home = conn.scalar(
                    text(
                        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                        "WHERE e.extname = 'pg_trgm'"
                    )
                )
            return names, home
        finally:
            engine.dispose()

    searched = {"ix_customers_name_id", *(f"ix_customers_{c}_trgm" for c in SEARCHED_COLUMNS)}
    with migrated_schema() as url:
        names, home = state(url)
        # The extension is the database's: never in a throw-away schema (dropping one
        # would take every other schema's trigram indexes with it).
        assert names == searched and home is not None and not home.startswith("t_")
        downgrade(url, "0009")
        assert state(url) == (set(), home)  # the extension stays for whoever else uses it
        upgrade(url)
        assert state(url) == (searched, home)


def test_migrations_sqlite_search_has_the_order_index_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'search.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = {i["name"] for i in inspect(conn).get_indexes("customers")}
        assert "ix_customers_name_id" in names and not {n for n in names if n and n.endswith("_trgm")}
        downgrade(url, "0009")
        with engine.connect() as conn:
            assert "ix_customers_name_id" not in {i["name"] for i in inspect(conn).get_indexes("customers")}
    finally:
        engine.dispose()
