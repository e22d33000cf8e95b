"""warm pools: pool islands' claim and code version, each branch's pool and its day counts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

- ``islands.claimed_at``: when a pool island was handed to a person (None: never pooled, or
  still in its pool); ``islands.code_version``: the version of the server code the island
  booted, as its registration reported it.
- ``pools``: one row per branch that has or had a pool: the size an admin set from chat (None:
  the deployment's), when the branch's code was last said to have changed (``refreshed_at``),
  and the newest code version its islands registered with.
- ``code_versions``: when each branch first saw each code version registered; the newest is
  the one first seen last, so an island that booted old code registering late (a node CI has
  not reached yet) never takes its branch back to that code.
- ``pool_days``: claims and misses per branch and UTC day, counted in the start's transaction,
  spread over a few rows (``shard``) so that concurrent claims do not queue on one row lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("islands") as batch:
        batch.add_column(sa.Column("claimed_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("code_version", sa.String(100), nullable=True))
    # a branch's latest islands (how long a fresh one takes, told when a start misses the pool)
    op.create_index("ix_islands_branch_id", "islands", ["branch", "id"])
    op.create_table(
        "pools",
        sa.Column("branch", sa.String(63), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("size_set_by", sa.String(32), nullable=True),
        sa.Column("size_set_at", UTC_DATETIME, nullable=True),
        sa.Column("refreshed_at", UTC_DATETIME, nullable=True),
        sa.Column("code_version", sa.String(100), nullable=True),
        sa.Column("code_seen_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("branch"),
    )
    op.create_table(
        "code_versions",
        sa.Column("branch", sa.String(63), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("branch", "version"),
    )
    op.create_table(
        "pool_days",
        sa.Column("branch", sa.String(63), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("claims", sa.Integer(), server_default="0", nullable=False),
        sa.Column("misses", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("branch", "day", "shard"),
    )


def downgrade() -> None:
    op.drop_table("pool_days")
    op.drop_table("code_versions")
    op.drop_table("pools")
    op.drop_index("ix_islands_branch_id", "islands")
    # plain ALTERs (SQLite >= 3.35 has DROP COLUMN), not batch mode, which would copy
    # ``islands`` into a new table that the rows referring to it do not allow (see 0012)
    op.drop_column("islands", "code_version")
    op.drop_column("islands", "claimed_at")
