"""customers.status defaults to 'inactive', as in the seed's newest schema.

The seed's 001_create_customers.sql said `status customer_status DEFAULT 'active'`
when revision 0001 was written from it; its newest version says
`DEFAULT 'inactive'`. This follows it: a row that an outside writer (the Go
collector, SQL by hand) inserts without a status is not a customer to monitor
until someone says so. Our own writers never rely on it: the models default to
'active' and the API's create says 'active' when the request has no status.
Existing rows keep their status; only the default changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _set_status_default("inactive")


def downgrade() -> None:
    _set_status_default("active")


def _set_status_default(value: str) -> None:
    if op.get_context().dialect.name != "sqlite":
        op.alter_column("customers", "status", server_default=value)
        return
    # SQLite cannot change a default in place: batch mode copies customers into a new
    # table and drops the old one. With foreign keys on (models.db turns them on for
    # every connection) that DROP deletes every row of the old table first, and
    # monitor_sessions' ON DELETE CASCADE takes the sessions with it. PRAGMA
    # foreign_keys=OFF cannot help: it does nothing inside a transaction, and one is
    # open whenever an earlier revision ran in the same upgrade. So the sessions are
    # kept aside and put back.
    op.execute("CREATE TEMP TABLE _keep_monitor_sessions AS SELECT * FROM monitor_sessions")
    with op.batch_alter_table("customers", copy_from=_sqlite_customers()) as batch:
        batch.alter_column("status", server_default=value)
    op.execute(
        "INSERT INTO monitor_sessions SELECT * FROM _keep_monitor_sessions "
        "WHERE id NOT IN (SELECT id FROM monitor_sessions)"
    )
    op.execute("DROP TABLE _keep_monitor_sessions")


def _sqlite_customers() -> sa.Table:
    """customers on SQLite as revisions 0001-0004 built it, for batch mode to copy.

    Written out rather than reflected: `--sql` has no database to reflect, and
    SQLite's reflection loses the name and ON DELETE of package_id's inline
    REFERENCES (0002 added it with ADD COLUMN). Enums are VARCHAR + CHECK there.
    """
    metadata = sa.MetaData()
    string_columns = {
        "mikrotik_id": 100,
        "username": 100,
        "name": 255,
        "phone": 20,
        "email": 255,
        "service_type": 16,
        "pppoe_username": 100,
        "pppoe_password": 100,
        "pppoe_profile": 100,
        "hotspot_username": 100,
        "hotspot_password": 100,
        "hotspot_mac_address": 17,
        "static_ip": 43,
        "assigned_ip": 43,
        "mac_address": 17,
    }
    required = {"mikrotik_id", "username", "name", "service_type"}
    return sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Uuid(), nullable=False),
        *(
            sa.Column(name, sa.String(length), nullable=name not in required)
            for name, length in string_columns.items()
        ),
        sa.Column("last_online", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16)),  # its default is what the batch sets
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column(
            "package_id",
            sa.Integer(),
            sa.ForeignKey("packages.id", ondelete="SET NULL", name="fk_customers_package_id_packages"),
        ),
        sa.Column("interface_name", sa.String(255)),
        sa.Column("queue_name", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="customers_pkey"),
        *(
            sa.UniqueConstraint("mikrotik_id", column, name=f"customers_mikrotik_id_{column}_key")
            for column in ("username", "pppoe_username", "hotspot_username")
        ),
        sa.CheckConstraint(
            "service_type IN ('pppoe', 'hotspot', 'static_ip')", name="ck_customers_service_type"
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'inactive', 'pending')", name="ck_customers_customer_status"
        ),
        *(
            sa.Index(name, column)
            for name, column in (
                ("idx_customers_mikrotik_id", "mikrotik_id"),
                ("idx_customers_username", "username"),
                ("idx_customers_pppoe", "pppoe_username"),
                ("idx_customers_hotspot", "hotspot_username"),
                ("idx_customers_service_type", "service_type"),
                ("idx_customers_status", "status"),
                ("idx_customers_mac", "mac_address"),
                ("ix_customers_package_id", "package_id"),
                ("ix_customers_static_ip", "static_ip"),
            )
        ),
    )
