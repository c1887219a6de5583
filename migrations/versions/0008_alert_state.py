"""Alerts: one row per alert, with the partial unique index that keeps one open alert
per rule and subject (models/alert.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATES = ("firing", "resolved")
OPEN = "resolved_at IS NULL"


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(150), nullable=False),
        sa.Column("customer_id", sa.Uuid()),
        sa.Column("router_id", sa.String(100)),
        sa.Column("state", sa.String(16), nullable=False, server_default="firing"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("values", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], ondelete="CASCADE", name="fk_alerts_rule_id_alert_rules"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], ondelete="CASCADE", name="fk_alerts_customer_id_customers"
        ),
        sa.CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name="ck_alerts_alert_state"),
    )
    # THE guarantee: one open alert per rule and subject.
    op.create_index(
        "uq_alerts_open_rule_subject",
        "alerts",
        ["rule_id", "subject"],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index("ix_alerts_state_started_at", "alerts", ["state", "started_at"])
    op.create_index("ix_alerts_router_id", "alerts", ["router_id"])
    op.create_index("ix_alerts_customer_id", "alerts", ["customer_id"])
    if _is_postgresql():
        op.execute(
            "CREATE TRIGGER update_alerts_updated_at BEFORE UPDATE ON alerts "
            "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
        )


def downgrade() -> None:
    if _is_postgresql():
        op.execute("DROP TRIGGER IF EXISTS update_alerts_updated_at ON alerts")
    op.drop_table("alerts")
