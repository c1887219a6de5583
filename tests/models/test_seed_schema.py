"""The seed's schema and sample data survive the move to Alembic unchanged."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from models.migrate import alembic_config, upgrade
from tests.pg import migrated_schema

SEED_SQL = Path(__file__).resolve().parents[2] / "migrations" / "001_create_customers.sql"
SEED_INSERT = (
    "INSERT INTO customers (mikrotik_id, username, name, service_type, pppoe_username, "
    "pppoe_password, status) VALUES ('mikrotik-001','budi','Budi Santoso','pppoe','budi',"
    "'secret123','active')"
)


def test_seed_sample_insert_runs_unchanged_on_migrated_schema(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(SEED_INSERT))
            row = conn.execute(
                text(
                    "SELECT id, status::text, service_type::text, created_at, updated_at, package_id "
                    "FROM customers WHERE username = 'budi'"
                )
            ).one()
        assert isinstance(row.id, uuid.UUID)  # gen_random_uuid() default
        assert (row.status, row.service_type, row.package_id) == ("active", "pppoe", None)
        assert row.created_at is not None and row.updated_at is not None
    finally:
        engine.dispose()


def test_seed_status_defaults_to_inactive(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (mikrotik_id, username, name, service_type) "
                    "VALUES ('mikrotik-001', 'sari', 'Sari', 'hotspot')"
                )
            )
            assert conn.scalar(text("SELECT status::text FROM customers")) == "inactive"
    finally:
        engine.dispose()


def test_seed_updated_at_trigger_touches_raw_sql_updates(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(SEED_INSERT))
            conn.execute(text("UPDATE customers SET updated_at = now() - interval '1 day'"))
        with engine.begin() as conn:
            conn.execute(text("UPDATE customers SET phone = '0812' WHERE username = 'budi'"))
            age = conn.scalar(text("SELECT now() - updated_at < interval '1 minute' FROM customers"))
        assert age is True
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("column", "value"),
    [("service_type", "dsl"), ("static_ip", "10.0.0.999"), ("mac_address", "zz:zz")],
)
def test_seed_database_refuses_bad_values_in_raw_sql(pg_url: str, column: str, value: str) -> None:
    engine = create_engine(pg_url)
    try:
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO customers (mikrotik_id, username, name, service_type, {column}) "
                    f"VALUES ('m', 'u', 'n', 'pppoe', :v)"
                    if column != "service_type"
                    else "INSERT INTO customers (mikrotik_id, username, name, service_type) "
                    "VALUES ('m', 'u', 'n', :v)"
                ),
                {"v": value},
            )
    finally:
        engine.dispose()


def test_seed_sql_script_database_adopted_by_stamp_then_upgrade() -> None:
    with migrated_schema(migrate=False) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(SEED_SQL.read_text(encoding="utf-8"))
                conn.execute(text(SEED_INSERT))
            command.stamp(alembic_config(url), "0001")
            upgrade(url)
            with engine.connect() as conn:
                assert {"routers", "packages", "monitor_sessions"} <= set(inspect(conn).get_table_names())
                assert conn.scalar(text("SELECT name FROM customers")) == "Budi Santoso"
        finally:
            engine.dispose()
