"""chat digests, and how each notice was delivered

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

- ``islands.chat_digest``: the island's root message (``chat_thread``) is a digest shared by
  the islands started at once in its channel; its notices then go to the owner directly, or
  are only shown in the digest.
- ``outbox.delivered_as``: how a sent notice was delivered: ``posted`` (a message),
  ``shown`` (only in the island's root message or digest), ``superseded`` (a newer notice of
  the island said more before it went out). Notices sent before this are NULL (posted).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chat_digest", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_as", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("delivered_as")
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.drop_column("chat_digest")
