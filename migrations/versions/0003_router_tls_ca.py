"""routers.tls_ca: the CA that signs a router's API-SSL certificate.

A PEM file's absolute path or the PEM text itself; NULL means the system's
trusted CAs, as before. Nullable, so existing rows are unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("routers", sa.Column("tls_ca", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routers") as batch:
        batch.drop_column("tls_ca")
