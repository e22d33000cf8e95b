"""island memory

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

- ``island_memory``: each island's last memory reading of its current run (working set, its
  container's limit, the metrics' sample time) and what is kept between readings to warn its
  owner once before the kernel OOMKills it (high readings in a row, warned since it last was
  not high). The row goes when the island leaves running/ready (a restart starts afresh).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "island_memory",
        sa.Column("island_id", sa.Integer(), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("read_at", UTC_DATETIME, nullable=False),
        sa.Column("high_in_a_row", sa.Integer(), server_default="0", nullable=False),
        sa.Column("warned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["island_id"], ["islands.id"]),
        sa.PrimaryKeyConstraint("island_id"),
    )


def downgrade() -> None:
    op.drop_table("island_memory")
