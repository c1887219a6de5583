"""Customer search at ISP scale: trigram indexes for the substring search, (name, id) for its order.

GET /api/customers searches `name`, `username`, `pppoe_username` and
`hotspot_username` with ILIKE '%text%' (web/queries/customers.py), which no B-tree
serves: at 50,000 customers every keystroke was a scan of the table. On PostgreSQL,
one pg_trgm GIN index per searched column lets the planner answer the OR of the four
with a BitmapOr of four index scans (a search of 3 characters or more; shorter ones
have no trigram and the planner scans, as before). One index per column, not one
over a concatenation of them: measured alike (docs/scaling.md, Customer search), and
the query stays the plain OR, with no expression to keep identical to the index's.

The pg_trgm extension is the database's, not the schema's: an extension lives in one
schema of the database whichever schema asked for it. It is created, if missing, in
`public` when that exists and may be created in, else in the current schema, under an
advisory lock so that two migrations at once (tests migrate many schemas side by side)
cannot both try; where it already lives is where the operator class is taken from.
Creating it needs the CREATE privilege on the database (pg_trgm is a trusted
extension); a role without it needs `CREATE EXTENSION pg_trgm` run once by an owner.
The downgrade drops the indexes and leaves the extension: other schemas or
applications of the database may use it.

`ix_customers_name_id` (both dialects) is the list's order, name then id: a page of
the list, searched or not, walks it instead of sorting every match. SQLite keeps its
LIKE scan (the embedded demo's few customers).

Building the indexes locks writes to `customers` for its duration: about 1 s per
100,000 customers on a 2-core machine.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SEARCHED = ("name", "username", "pppoe_username", "hotspot_username")
# Any constant: the lock only serialises the creation of the extension.
EXTENSION_LOCK = 0x70675F7472676D  # "pg_trgm"


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _trgm_home() -> str | None:
    """The schema pg_trgm lives in, creating it first if it is not installed; None offline
    (the --sql script names the operator class unqualified, as the reader's search_path finds it)."""
    if op.get_context().as_sql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        return None
    conn = op.get_bind()
    where = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    home = conn.scalar(where)
    if home is None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": EXTENSION_LOCK})
        home = conn.scalar(where)
    if home is None:
        home = conn.scalar(
            sa.text(
                "SELECT CASE WHEN to_regnamespace('public') IS NOT NULL "
                "AND has_schema_privilege('public', 'CREATE') THEN 'public' ELSE current_schema() END"
            )
        )
        conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA {_quote(home)}"))
    return str(home)


def _quote(name: str) -> str:
    return op.get_context().dialect.identifier_preparer.quote_identifier(name)


def upgrade() -> None:
    op.create_index("ix_customers_name_id", "customers", ["name", "id"])
    if not _is_postgresql():
        return
    home = _trgm_home()
    opclass = "gin_trgm_ops" if home is None else f"{_quote(home)}.gin_trgm_ops"
    for column in SEARCHED:
        op.execute(f"CREATE INDEX ix_customers_{column}_trgm ON customers USING gin ({column} {opclass})")


def downgrade() -> None:
    if _is_postgresql():
        for column in SEARCHED:
            op.drop_index(f"ix_customers_{column}_trgm", "customers")
    op.drop_index("ix_customers_name_id", "customers")
