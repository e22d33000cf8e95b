"""island row version

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

``islands.version`` is bumped by every update of the row, so the lifecycle tick can read the
(id, version) pairs of the live islands and fetch only the rows that changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.drop_column("version")
