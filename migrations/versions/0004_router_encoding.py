"""routers.encoding: how a router holds names beyond ASCII.

RouterOS stores the bytes it is given: utf-8 when names came over the API, the
Windows code page of the PC when they were typed in Winbox (cp1252, cp1251...).
Words to the router are written in it; words from it are read as UTF-8 when valid,
else in it (docs/routeros.md, Encodings). Existing rows get utf-8, what the client
used before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "routers", sa.Column("encoding", sa.String(length=32), nullable=False, server_default="utf-8")
    )


def downgrade() -> None:
    with op.batch_alter_table("routers") as batch:
        batch.drop_column("encoding")
