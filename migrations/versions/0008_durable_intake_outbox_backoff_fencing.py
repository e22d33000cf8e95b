"""durable intake, outbox backoff and claims, lease epochs, pod create errors

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

- ``deliveries`` becomes the durable intake: ``kind``, ``payload`` (what carrying the request
  out needs), ``state`` (pending, working, done; existing rows are done), a claim
  (``claimed_by``, ``claim_until``), ``attempts`` and ``done_at``.
- ``outbox``: ``next_attempt_at`` (backoff), ``claimed_by``/``claim_until`` (conditional
  claims), ``given_up_at`` (a notice too old to deliver is recorded, not deleted).
- ``leases.epoch``: raised on every change of hands, a fencing token.
- ``islands.create_error``: why the last pod create failed; ``creating_since``: when the
  island went from requested to creating (its create timeout counts from there);
  ``pod_created_at``: when the cluster answered the create (a pod missing after that was
  deleted; one missing before it is created again).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), server_default="done", nullable=False)
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("claim_until", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("done_at", UTC_DATETIME, nullable=True))
        batch_op.create_index(
            "ix_deliveries_state_claim_until", ["state", "claim_until"], unique=False
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("claim_until", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("given_up_at", UTC_DATETIME, nullable=True))
        batch_op.create_index("ix_outbox_island_id_id", ["island_id", "id"], unique=False)
    if "ix_outbox_island_id" in _outbox_indexes():
        # left by a downgrade on MySQL; the composite index now serves the foreign key
        op.drop_index("ix_outbox_island_id", table_name="outbox")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.BigInteger(), server_default="1", nullable=False))
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("create_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("creating_since", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("pod_created_at", UTC_DATETIME, nullable=True))


def _outbox_indexes() -> set[str]:
    return {str(index["name"]) for index in sa.inspect(op.get_bind()).get_indexes("outbox")}


def downgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.drop_column("pod_created_at")
        batch_op.drop_column("creating_since")
        batch_op.drop_column("create_error")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_column("epoch")
    if op.get_bind().dialect.name == "mysql":
        # MySQL lets the foreign key on island_id use the composite index and will not drop
        # it while the key needs it: give the key its own index first
        op.create_index("ix_outbox_island_id", "outbox", ["island_id"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_island_id_id")
        for column in ("given_up_at", "claim_until", "claimed_by", "next_attempt_at"):
            batch_op.drop_column(column)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_state_claim_until")
        for column in (
            "done_at",
            "attempts",
            "claim_until",
            "claimed_by",
            "state",
            "payload",
            "kind",
        ):
            batch_op.drop_column(column)
