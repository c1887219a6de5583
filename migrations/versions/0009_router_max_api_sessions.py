"""routers.max_api_sessions: the router's cap of API sessions from all monitors workers.

Router affinity (tasks/affinity.py) runs a router's monitors and watch in at most
max_api_sessions / ROUTER_CONNECTIONS_PER_PROCESS worker processes. NULL means the
ROUTER_MAX_API_SESSIONS setting, so existing rows are unchanged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A column-level CHECK: SQLite can add it with the column (not ALTER it in later).
    check = sa.CheckConstraint(
        "max_api_sessions IS NULL OR max_api_sessions > 0", name="ck_routers_max_api_sessions_positive"
    )
    op.add_column("routers", sa.Column("max_api_sessions", sa.Integer(), check, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routers") as batch:
        batch.drop_constraint("ck_routers_max_api_sessions_positive", type_="check")
        batch.drop_column("max_api_sessions")
