"""the board: memory samples and its signing secret

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

- ``memory_samples``: each island's memory readings of the last hour, for the board's chart
  (deleted as they age).
- ``server_secrets``: secrets the bot makes for itself once and its replicas share (the board's
  link-signing key when ``ISLANDBOT_BOARD_SECRET`` does not give one).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "memory_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("island_id", sa.Integer(), nullable=False),
        sa.Column("read_at", UTC_DATETIME, nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_memory_samples_island_id_read_at", "memory_samples", ["island_id", "read_at"]
    )
    op.create_index("ix_memory_samples_read_at", "memory_samples", ["read_at"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_index("ix_memory_samples_read_at", "memory_samples")
    op.drop_index("ix_memory_samples_island_id_read_at", "memory_samples")
    op.drop_table("memory_samples")
