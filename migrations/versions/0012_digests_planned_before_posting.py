"""digests planned before posting

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

- ``islands.digest_of``: the island whose digest key (``digest-<id>``) this island's
  announcement goes out under, written before the digest is posted. An attempt tried again
  (the bot killed, or the database gone, between the post and its record) looks for that
  digest and records it, whatever islands are being announced with it now; an announcement
  tried again without one was posted on its own, if at all, and is never put into a digest.
  NULL for islands announced before this, as if posted on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    # a plain ALTER (SQLite >= 3.35 has DROP COLUMN): batch mode would copy the islands table
    # into a new one, which the rows of other tables that refer to islands do not allow
    op.drop_column("islands", "digest_of")
