"""The seed's customers table (migrations/001_create_customers.sql), exactly.

Same enum types, columns, defaults and names as the seed's script, so a database
built from that script is adopted with `alembic stamp 0001` + `alembic upgrade
head`, and a database built here is indistinguishable from one built there.
The names are PostgreSQL's own for the seed's unnamed constraints
(customers_pkey, customers_<columns>_key); the indexes keep the seed's idx_ names.

The seed's three sample rows (customer1..3) are NOT inserted: this revision
runs on production databases, which must not gain test customers.

Written from the seed's file as it was then, with `status ... DEFAULT 'active'`;
its newest version says 'inactive', which revision 0005 follows.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SERVICE_TYPES = ("pppoe", "hotspot", "static_ip")
STATUSES = ("active", "suspended", "inactive", "pending")

# The seed's index names and columns.
INDEXES = {
    "idx_customers_mikrotik_id": "mikrotik_id",
    "idx_customers_username": "username",
    "idx_customers_pppoe": "pppoe_username",
    "idx_customers_hotspot": "hotspot_username",
    "idx_customers_service_type": "service_type",
    "idx_customers_status": "status",
    "idx_customers_mac": "mac_address",
}

# Shared by every table's updated_at trigger (0002 reuses it). The seed's text to the
# letter: PostgreSQL keeps a function's body as written, so this is what makes the two
# databases' functions identical.
TOUCH_FUNCTION = (
    "CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$ "
    "BEGIN NEW.updated_at = NOW(); RETURN NEW; END; $$ LANGUAGE plpgsql"
)


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _enum(name: str, values: tuple[str, ...]) -> sa.types.TypeEngine:
    if _is_postgresql():
        # Created explicitly below so offline (--sql) output shows CREATE TYPE in order.
        return postgresql.ENUM(*values, name=name, create_type=False)
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _inet() -> sa.types.TypeEngine:
    return postgresql.INET() if _is_postgresql() else sa.String(43)


def _macaddr() -> sa.types.TypeEngine:
    return postgresql.MACADDR() if _is_postgresql() else sa.String(17)


def _unique(*columns: str) -> sa.UniqueConstraint:
    # PostgreSQL's name for the seed's unnamed UNIQUE (...).
    return sa.UniqueConstraint(*columns, name=f"customers_{'_'.join(columns)}_key")


def upgrade() -> None:
    pg = _is_postgresql()
    if pg:
        quoted = lambda values: ", ".join(f"'{v}'" for v in values)  # noqa: E731
        op.execute(f"CREATE TYPE service_type AS ENUM ({quoted(SERVICE_TYPES)})")
        op.execute(f"CREATE TYPE customer_status AS ENUM ({quoted(STATUSES)})")

    op.create_table(
        "customers",
        sa.Column(
            "id",
            sa.Uuid(),
            nullable=False,
            server_default=sa.text("gen_random_uuid()") if pg else None,
        ),
        sa.Column("mikrotik_id", sa.String(100), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("phone", sa.String(20)),
        sa.Column("email", sa.String(255)),
        sa.Column("service_type", _enum("service_type", SERVICE_TYPES), nullable=False),
        sa.Column("pppoe_username", sa.String(100)),
        sa.Column("pppoe_password", sa.String(100)),
        sa.Column("pppoe_profile", sa.String(100)),
        sa.Column("hotspot_username", sa.String(100)),
        sa.Column("hotspot_password", sa.String(100)),
        sa.Column("hotspot_mac_address", _macaddr()),
        sa.Column("static_ip", _inet()),
        sa.Column("assigned_ip", _inet()),
        sa.Column("mac_address", _macaddr()),
        sa.Column("last_online", sa.DateTime(timezone=True)),
        # Nullable with defaults, as in the seed: only an explicit NULL leaves them empty.
        sa.Column("status", _enum("customer_status", STATUSES), server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="customers_pkey"),
        _unique("mikrotik_id", "username"),
        _unique("mikrotik_id", "pppoe_username"),
        _unique("mikrotik_id", "hotspot_username"),
    )
    for name, column in INDEXES.items():
        op.create_index(name, "customers", [column])

    if pg:
        op.execute(TOUCH_FUNCTION)
        op.execute(
            "CREATE TRIGGER update_customers_updated_at BEFORE UPDATE ON customers "
            "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
        )


def downgrade() -> None:
    pg = _is_postgresql()
    if pg:
        op.execute("DROP TRIGGER IF EXISTS update_customers_updated_at ON customers")
    op.drop_table("customers")
    if pg:
        op.execute("DROP FUNCTION IF EXISTS update_updated_at_column()")
        op.execute("DROP TYPE IF EXISTS customer_status")
        op.execute("DROP TYPE IF EXISTS service_type")
