"""digests planned before posting

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

- ``islands.digest_of``: the island whose digest key (``digest-<id>``) this island's
  announcement goes out under, written as the announcement is claimed for a new digest, before
  the digest is posted (never for one tried before). An attempt tried again (the bot killed, or
  the database gone, between the post and its record) looks for that digest and records it,
  whatever islands are being announced with it now; when the channel refuses the digest for
  good, it is cleared before each island is announced on its own. An announcement tried again
  without one was posted on its own, if at all, and is never put into a digest. NULL for
  islands announced before this, as if posted on their own.

The downgrade drops the column with a plain ``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35 or
newer, as Debian 12's 3.40): batch mode would copy ``islands`` into a new table, which the rows
of the tables that refer to it do not allow.
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
    # a plain ALTER (SQLite >= 3.35 has DROP COLUMN), not batch mode: see the docstring
    op.drop_column("islands", "digest_of")
