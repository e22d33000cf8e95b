"""lifecycle bookkeeping, outbox and leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Adds what the lifecycle engine records (pod create sent, expiry warned, scheduler message told,
failed probes), the outbox of notices, and the leader lease.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
MYSQL_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("renewed_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("island_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["island_id"], ["islands.id"], name=op.f("fk_outbox_island_id_islands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_sent_at_id", ["sent_at", "id"], unique=False)

    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pod_requested_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("expiry_warned_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("unschedulable_message", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("probe_failures", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.drop_column("probe_failures")
        batch_op.drop_column("unschedulable_message")
        batch_op.drop_column("expiry_warned_at")
        batch_op.drop_column("pod_requested_at")

    op.drop_table("outbox")  # its indexes go with it
    op.drop_table("leases")
