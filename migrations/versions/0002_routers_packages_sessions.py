"""Routers, packages and monitor sessions; customers gain a package, overrides and
an index on static_ip (the seed has none).

Every added customer column is nullable so the seed's rows stay valid. Router ids
are VARCHAR(100) like the seed's customers.mikrotik_id they are looked up by.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TLS_MODES = ("verify", "insecure", "anon-dh")
DESIRED_STATES = ("running", "stopped")
ACTUAL_STATES = ("pending", "starting", "running", "reconnecting", "offline", "stopping", "stopped")
TABLES_WITH_TRIGGER = ("routers", "packages", "monitor_sessions")


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    pg = _is_postgresql()
    op.create_table(
        "routers",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False, server_default="8728"),
        sa.Column("username", sa.String(100), nullable=False, server_default="admin"),
        sa.Column("password", sa.String(), nullable=False, server_default=""),
        sa.Column("tls", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("tls_mode", sa.String(16), nullable=False, server_default="verify"),
        sa.Column("max_monitors", sa.Integer()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_routers"),
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name="ck_routers_port_range"),
        sa.CheckConstraint(
            "max_monitors IS NULL OR max_monitors > 0", name="ck_routers_max_monitors_positive"
        ),
        sa.CheckConstraint(_in("tls_mode", TLS_MODES), name="ck_routers_router_tls_mode"),
    )
    op.create_table(
        "packages",
        sa.Column("id", sa.Integer(), sa.Identity() if pg else None, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("download_bps", sa.BigInteger(), nullable=False),
        sa.Column("upload_bps", sa.BigInteger(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_packages"),
        sa.UniqueConstraint("name", name="uq_packages_name"),
        sa.CheckConstraint("download_bps > 0", name="ck_packages_download_bps_positive"),
        sa.CheckConstraint("upload_bps > 0", name="ck_packages_upload_bps_positive"),
    )
    op.create_table(
        "monitor_sessions",
        sa.Column(
            "id", sa.Uuid(), nullable=False, server_default=sa.text("gen_random_uuid()") if pg else None
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("router_id", sa.String(100), nullable=False),
        sa.Column("desired_state", sa.String(16), nullable=False, server_default="running"),
        sa.Column("actual_state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("task_id", sa.String(255)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.Column("stop_reason", sa.Text()),
        sa.Column("requested_by", sa.String(255)),
        sa.Column("max_duration_s", sa.Integer()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_sessions"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            ondelete="CASCADE",
            name="fk_monitor_sessions_customer_id_customers",
        ),
        sa.CheckConstraint("attempt >= 0", name="ck_monitor_sessions_attempt_not_negative"),
        sa.CheckConstraint(
            "max_duration_s IS NULL OR max_duration_s > 0",
            name="ck_monitor_sessions_max_duration_positive",
        ),
        sa.CheckConstraint(
            _in("desired_state", DESIRED_STATES), name="ck_monitor_sessions_monitor_desired_state"
        ),
        sa.CheckConstraint(
            _in("actual_state", ACTUAL_STATES), name="ck_monitor_sessions_monitor_actual_state"
        ),
    )
    # The single-flight guarantee: at most one open session per customer.
    op.create_index(
        "uq_monitor_sessions_open_customer",
        "monitor_sessions",
        ["customer_id"],
        unique=True,
        postgresql_where=sa.text("desired_state = 'running'"),
        sqlite_where=sa.text("desired_state = 'running'"),
    )
    op.create_index(
        "ix_monitor_sessions_desired_state_actual_state",
        "monitor_sessions",
        ["desired_state", "actual_state"],
    )
    op.create_index("ix_monitor_sessions_router_id", "monitor_sessions", ["router_id"])

    if pg:
        op.add_column("customers", sa.Column("package_id", sa.Integer()))
        op.create_foreign_key(
            "fk_customers_package_id_packages",
            "customers",
            "packages",
            ["package_id"],
            ["id"],
            ondelete="SET NULL",
        )
    else:
        # SQLite can add a column with an inline REFERENCES but cannot ALTER a
        # constraint in; this keeps upgrade a plain ALTER, online and offline.
        op.execute(
            "ALTER TABLE customers ADD COLUMN package_id INTEGER "
            "CONSTRAINT fk_customers_package_id_packages REFERENCES packages (id) ON DELETE SET NULL"
        )
    op.add_column("customers", sa.Column("interface_name", sa.String(255)))
    op.add_column("customers", sa.Column("queue_name", sa.String(255)))
    op.create_index("ix_customers_package_id", "customers", ["package_id"])
    op.create_index("ix_customers_static_ip", "customers", ["static_ip"])

    if pg:
        for table in TABLES_WITH_TRIGGER:
            op.execute(
                f"CREATE TRIGGER update_{table}_updated_at BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
            )


def downgrade() -> None:
    pg = _is_postgresql()
    if pg:
        for table in TABLES_WITH_TRIGGER:
            op.execute(f"DROP TRIGGER IF EXISTS update_{table}_updated_at ON {table}")
    op.drop_index("ix_customers_static_ip", table_name="customers")
    op.drop_index("ix_customers_package_id", table_name="customers")
    # Batch mode: on SQLite a column with a foreign key can only go by rebuilding the table.
    with op.batch_alter_table("customers") as batch:
        if pg:
            batch.drop_constraint("fk_customers_package_id_packages", type_="foreignkey")
        batch.drop_column("queue_name")
        batch.drop_column("interface_name")
        batch.drop_column("package_id")
    op.drop_table("monitor_sessions")
    op.drop_table("packages")
    op.drop_table("routers")
