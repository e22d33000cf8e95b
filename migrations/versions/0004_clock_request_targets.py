"""clock request targets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

A clock request remembers what was asked (``now``, a relative shift, an absolute time) so that
one approved later lands where its requester meant: an absolute time is turned into an offset
when it is applied, not when it was asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("clock_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="relative", nullable=False)
        )
        batch_op.add_column(sa.Column("target_at", UTC_DATETIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clock_requests", schema=None) as batch_op:
        batch_op.drop_column("target_at")
        batch_op.drop_column("kind")
