"""The seed's schema, as its authors published it, is what revision 0001 builds, and a
database built from the seed's script is adopted with its rows intact."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from harness.pg import migrated_schema
from models import Customer, CustomerStatus
from models.migrate import main as migrate_main
from models.migrate import stamp, upgrade
from models.resolution import resolve
from settings import load_settings
from tests.models.schema_shape import schema_shape

REPO = Path(__file__).resolve().parents[2]
# The seed's newest file as the project carries it (its statements, without its comments
# and blank lines); the shipped copy adds only a header.
SEED_SQL = Path(__file__).resolve().parent / "data" / "seed_001_create_customers.sql"
SHIPPED_SQL = REPO / "migrations" / "001_create_customers.sql"
NEWEST_DEFAULT = "status customer_status DEFAULT 'inactive'"
# The seed's file before its newest change, which turned the status default from
# 'active' to 'inactive': what revision 0001 was written from (0005 follows the change).
SEED_SQL_EARLIER = SEED_SQL.read_text(encoding="utf-8").replace(
    NEWEST_DEFAULT, "status customer_status DEFAULT 'active'"
)
SEED_INSERT = (
    "INSERT INTO customers (mikrotik_id, username, name, service_type, pppoe_username, "
    "pppoe_password) VALUES ('mikrotik-001','budi','Budi Santoso','pppoe','budi','secret123')"
)
NO_ENV = load_settings({}, env_file="/nonexistent.env")


@contextmanager
def _built_from(sql: str) -> Iterator[tuple[str, Engine]]:
    """A schema built by running a seed SQL file, as the seed's deployments were."""
    with migrated_schema(migrate=False) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)
            yield url, engine
        finally:
            engine.dispose()


@pytest.fixture
def seed_built() -> Iterator[tuple[str, Engine]]:
    with _built_from(SEED_SQL.read_text(encoding="utf-8")) as built:
        yield built


def _shape(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return schema_shape(conn)


def test_seed_shipped_sql_is_the_seed_file_under_a_header() -> None:
    shipped = SHIPPED_SQL.read_text(encoding="utf-8")
    header, _, body = shipped.partition("\n\n")
    assert all(line.startswith("--") for line in header.splitlines())
    assert body == SEED_SQL.read_text(encoding="utf-8")


def test_seed_schema_revision_0001_builds_exactly_the_earlier_seed_schema(
    seed_built: tuple[str, Engine],
) -> None:
    with migrated_schema(migrate=False) as url:
        upgrade(url, "0001")
        engine = create_engine(url)
        try:
            migrated = _shape(engine)
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT count(*) FROM customers")) == 0  # no sample rows
        finally:
            engine.dispose()
    with _built_from(SEED_SQL_EARLIER) as (_, earlier_engine):
        seed = _shape(earlier_engine)
    assert migrated == seed
    # The newest file differs from 0001 in the status default only (revision 0005's).
    newest = _shape(seed_built[1])
    differing = [pair for pair in zip(seed["columns"], newest["columns"], strict=True) if pair[0] != pair[1]]
    assert [(old[2], old[5], new[5]) for old, new in differing] == [
        ("status", "'active'::customer_status", "'inactive'::customer_status")
    ]
    assert {k: v for k, v in seed.items() if k != "columns"} == {
        k: v for k, v in newest.items() if k != "columns"
    }
    # The comparison is only worth something if it saw the seed's objects.
    assert ("service_type", ["pppoe", "hotspot", "static_ip"]) in seed["enums"]
    unique = ("customers_mikrotik_id_pppoe_username_key", "u", "UNIQUE (mikrotik_id, pppoe_username)")
    assert ("customers", *unique) in seed["constraints"]
    assert {row[1] for row in seed["indexes"]} >= {"idx_customers_pppoe", "idx_customers_mac"}
    assert [row[1] for row in seed["triggers"]] == ["update_customers_updated_at"]


@pytest.mark.parametrize(
    ("which", "status"),
    [("newest", "inactive"), ("earlier", "active")],
)
def test_seed_sql_database_adopted_keeps_rows_and_matches_a_fresh_migration(which: str, status: str) -> None:
    # A database built from either version of the seed's file ends up like a fresh one:
    # its rows as they were (the sample rows took that file's default), the default 'inactive'.
    sql = SEED_SQL.read_text(encoding="utf-8") if which == "newest" else SEED_SQL_EARLIER
    with _built_from(sql) as built:
        _adopt_and_compare(*built, status)


def _adopt_and_compare(url: str, engine: Engine, status: str) -> None:
    with engine.connect() as conn:
        before = [r._asdict() for r in conn.execute(text("SELECT * FROM customers ORDER BY username"))]
    assert [r["status"] for r in before] == [status] * 3  # the column default filled them

    stamp(url, "0001")
    upgrade(url)

    columns = ", ".join(before[0])
    with engine.connect() as conn:
        after = [
            r._asdict() for r in conn.execute(text(f"SELECT {columns} FROM customers ORDER BY username"))
        ]
    assert after == before  # ids, passwords, timestamps: nothing touched
    with migrated_schema() as fresh_url:
        fresh = create_engine(fresh_url)
        try:
            assert _shape(engine) == _shape(fresh)
        finally:
            fresh.dispose()

    # Rows that took the newest default are not monitorable until someone activates
    # them (README, Coming from the Go collector); resolution is checked after that.
    with engine.begin() as conn:
        conn.execute(text("UPDATE customers SET status = 'active' WHERE status = 'inactive'"))
    with Session(engine) as session:
        by_username = {c.username: c for c in session.scalars(select(Customer))}
        targets = {name: resolve(session, row.id, NO_ENV) for name, row in by_username.items()}
    assert {name: (t.kind, t.name) for name, t in targets.items()} == {
        "customer1": ("interface", "<pppoe-tes>"),
        "customer2": ("interface", "<pppoe-tes1>"),
        "customer3": ("queue", "<hotspot-customer3>"),
    }
    assert targets["customer1"].router.id == "mikrotik-001" and targets["customer1"].router.from_settings


def test_seed_sql_database_not_stamped_gets_an_adoption_hint(
    seed_built: tuple[str, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = seed_built
    assert migrate_main(["--database-url", url]) == 1
    err = capsys.readouterr().err
    assert 'type "service_type" already exists' in err
    assert "python -m models.migrate --stamp 0001" in err
    assert migrate_main(["--database-url", url, "--stamp", "0001"]) == 0
    assert migrate_main(["--database-url", url]) == 0


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
        # The seed's newest default (revision 0005): our own writers always name a status.
        assert (row.status, row.service_type, row.package_id) == ("inactive", "pppoe", None)
        assert row.created_at is not None and row.updated_at is not None
    finally:
        engine.dispose()


def test_seed_null_status_reads_as_active(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (mikrotik_id, username, name, service_type, pppoe_username, "
                    "status) VALUES ('mikrotik-001', 'budi', 'Budi Santoso', 'pppoe', 'budi', NULL)"
                )
            )
            assert conn.scalar(text("SELECT status IS NULL FROM customers")) is True
        with Session(engine) as session:
            customer = session.scalars(select(Customer)).one()
            assert customer.status is CustomerStatus.ACTIVE
            assert resolve(session, customer, NO_ENV).name == "<pppoe-budi>"
            assert customer not in session.dirty  # reading did not queue a write
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
    [("service_type", "dsl"), ("static_ip", "10.0.0.999"), ("mac_address", "zz:zz"), ("phone", "0" * 21)],
)
def test_seed_database_refuses_bad_values_in_raw_sql(pg_url: str, column: str, value: str) -> None:
    if column == "service_type":
        columns, values = "mikrotik_id, username, name, service_type", "'m', 'u', 'n', :v"
    else:
        columns, values = f"mikrotik_id, username, name, service_type, {column}", "'m', 'u', 'n', 'pppoe', :v"
    engine = create_engine(pg_url)
    try:
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text(f"INSERT INTO customers ({columns}) VALUES ({values})"), {"v": value})
    finally:
        engine.dispose()
