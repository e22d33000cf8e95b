"""restarts and chat deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Adds the restart request an island's owner makes (the engine deletes the pod and creates a new
one with the same id and ports), and the table of chat deliveries already handled, so that a
retried or duplicated Slack request is acted on once across every replica.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
MYSQL_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("key", sa.String(length=191), nullable=False),
        sa.Column("seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_deliveries")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_seen_at", ["seen_at"], unique=False)
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restart_requested_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("restarts", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.drop_column("restarts")
        batch_op.drop_column("restart_requested_at")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_seen_at")
    op.drop_table("deliveries")
