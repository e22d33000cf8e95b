"""island registration details

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``islands.registration``: what the island's seed script reported when it registered (node, pod
IP, server version and build, ports), as JSON; ``registered_at`` already existed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registration", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.drop_column("registration")
