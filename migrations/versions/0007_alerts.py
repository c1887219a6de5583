"""Alerts: rules, webhooks and webhook deliveries; five default rules, all disabled.

alert_rules: a kind (utilization, session_flaps, router_total, watch_offline, rtt),
a scope ('all', 'router:<id>', 'package:<id>', 'customer:<uuid>') and the kind's
parameters as JSON (JSONB on PostgreSQL). webhooks: where events are POSTed, in which
format, and the HMAC secret. alert_deliveries: one row per (event, webhook), unique,
whose id is the Idempotency-Key of every attempt. Vocabularies are VARCHAR + CHECK,
like the engine's own (a new kind is a plain migration).

The default rules are data, written here once: one of each kind, disabled, so an
operator finds an example of each to enable or edit (README, Alerts). A downgrade
drops them with their table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = ("utilization", "session_flaps", "router_total", "watch_offline", "rtt")
FORMATS = ("generic", "alertmanager")
STATES = ("pending", "delivered", "dead")
EVENTS = ("alert_firing", "alert_resolved", "alert_acknowledged")
TABLES_WITH_TRIGGER = ("alert_rules", "webhooks", "alert_deliveries")

DEFAULT_RULES = (
    (
        "Customer at 95% of plan (download) for 10 minutes",
        "utilization",
        {"direction": "download", "threshold_pct": 95, "for_s": 600},
    ),
    ("PPPoE session dropped 6 times in an hour", "session_flaps", {"count": 6, "window_min": 60}),
    (
        "Router customers total at 900 Mbps for 1 minute",
        "router_total",
        {"threshold_bps": 900_000_000, "for_s": 60},
    ),
    ("Router watch offline for 1 minute", "watch_offline", {"for_s": 60}),
    (
        "Customer RTT p95 at 150 ms or loss at 5% over 1 minute",
        "rtt",
        {"p95_ms": 150, "loss_pct": 5, "window_s": 60},
    ),
)


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _identity() -> sa.Identity | None:
    return sa.Identity() if _is_postgresql() else None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), _identity(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(150), nullable=False, server_default="all"),
        sa.Column("params", _json(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_alert_rules"),
        sa.UniqueConstraint("name", name="uq_alert_rules_name"),
        sa.CheckConstraint(_in("kind", KINDS), name="ck_alert_rules_alert_kind"),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), _identity(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("format", sa.String(16), nullable=False, server_default="generic"),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.UniqueConstraint("name", name="uq_webhooks_name"),
        sa.CheckConstraint(_in("format", FORMATS), name="ck_webhooks_webhook_format"),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_status", sa.Integer()),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("dead_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            ondelete="CASCADE",
            name="fk_alert_deliveries_webhook_id_webhooks",
        ),
        sa.UniqueConstraint("event_id", "webhook_id", name="uq_alert_deliveries_event_id_webhook_id"),
        sa.CheckConstraint("attempts >= 0", name="ck_alert_deliveries_attempts_not_negative"),
        sa.CheckConstraint(_in("event", EVENTS), name="ck_alert_deliveries_alert_event_type"),
        sa.CheckConstraint(_in("state", STATES), name="ck_alert_deliveries_delivery_state"),
    )
    op.create_index(
        "ix_alert_deliveries_state_next_attempt_at", "alert_deliveries", ["state", "next_attempt_at"]
    )
    op.create_index("ix_alert_deliveries_webhook_id", "alert_deliveries", ["webhook_id"])
    if _is_postgresql():
        for table in TABLES_WITH_TRIGGER:
            op.execute(
                f"CREATE TRIGGER update_{table}_updated_at BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
            )
    # params as text: a JSON literal both dialects take (and --sql can print).
    rules = sa.table(
        "alert_rules",
        sa.column("name", sa.String),
        sa.column("kind", sa.String),
        sa.column("scope", sa.String),
        sa.column("params", sa.Text),
    )
    op.bulk_insert(
        rules,
        [
            {"name": name, "kind": kind, "scope": "all", "params": json.dumps(params)}
            for name, kind, params in DEFAULT_RULES
        ],
    )


def downgrade() -> None:
    if _is_postgresql():
        for table in TABLES_WITH_TRIGGER:
            op.execute(f"DROP TRIGGER IF EXISTS update_{table}_updated_at ON {table}")
    op.drop_table("alert_deliveries")
    op.drop_table("webhooks")
    op.drop_table("alert_rules")
