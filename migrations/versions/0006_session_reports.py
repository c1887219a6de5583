"""session_reports: one report per monitor session, kept after its stream expired.

Flat columns, one per number of the report (README, Session reports), named as its
CSV names them. The row goes with its session (ON DELETE CASCADE), and so with its
customer. Written once, never updated: no updated_at, no trigger.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VERDICTS = ("saturated by own traffic", "loss without load")


def _direction(name: str) -> list[sa.Column]:
    return [
        sa.Column(f"{name}_peak_bps", sa.BigInteger()),
        sa.Column(f"{name}_avg_bps", sa.BigInteger()),
        sa.Column(f"{name}_p95_bps", sa.BigInteger()),
        sa.Column(f"{name}_bytes", sa.BigInteger(), nullable=False),
        sa.Column(f"{name}_at_plan_s", sa.Float()),
    ]


def upgrade() -> None:
    op.create_table(
        "session_reports",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("customer_name", sa.String(255), nullable=False),
        sa.Column("router", sa.String(255), nullable=False),
        sa.Column("interface", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("missing_s", sa.Integer(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("package", sa.String(100)),
        sa.Column("package_download_bps", sa.BigInteger()),
        sa.Column("package_upload_bps", sa.BigInteger()),
        *_direction("download"),
        *_direction("upload"),
        sa.Column("rtt_probes", sa.Integer(), nullable=False),
        sa.Column("rtt_answered", sa.Integer(), nullable=False),
        *(
            sa.Column(f"rtt_{name}", sa.Float())
            for name in (
                "loss_pct",
                "median_ms",
                "p95_ms",
                "idle_median_ms",
                "idle_p95_ms",
                "load_median_ms",
                "load_p95_ms",
            )
        ),
        sa.Column("verdict", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("session_id", name="pk_session_reports"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["monitor_sessions.id"],
            ondelete="CASCADE",
            name="fk_session_reports_session_id_monitor_sessions",
        ),
        sa.CheckConstraint("samples >= 0", name="ck_session_reports_samples_not_negative"),
        sa.CheckConstraint("missing_s >= 0", name="ck_session_reports_missing_not_negative"),
        sa.CheckConstraint(
            "verdict IS NULL OR verdict IN (" + ", ".join(repr(v) for v in VERDICTS) + ")",
            name="ck_session_reports_verdict_known",
        ),
    )
    op.create_index(
        "ix_session_reports_customer_id_started_at", "session_reports", ["customer_id", "started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_session_reports_customer_id_started_at", table_name="session_reports")
    op.drop_table("session_reports")
