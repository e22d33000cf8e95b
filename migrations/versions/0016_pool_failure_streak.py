"""pools: a branch's pool islands failing in a row, and until when the keeper holds off

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

- ``pools.failures``: how many of the branch's pool islands failed before ever being ready,
  in a row, as the keeper last read its islands (0: it boots).
- ``pools.failed_last_id``: the newest of them (a newer failure lengthens the hold).
- ``pools.held_until``: no new pool island of the branch is started before then.
- ``pools.streak_from_id``: islands up to this id are not counted (a refresh: the branch's
  code changed, its past failures say nothing of it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.add_column(sa.Column("failures", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("failed_last_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("held_until", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("streak_from_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("streak_from_id")
        batch.drop_column("held_until")
        batch.drop_column("failed_last_id")
        batch.drop_column("failures")
