"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Types are spelled out here (not imported from bot.models) so this file keeps meaning what it
meant when later models change. Every MySQL table is InnoDB, utf8mb4 with binary collation, so
ids and request keys compare exactly as they do on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
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
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("island_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_island_id_at", ["island_id", "at"], unique=False)

    op.create_table(
        "excluded_ports",
        sa.Column("port", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("since", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("port", name=op.f("pk_excluded_ports")),
        **MYSQL_OPTIONS,
    )
    port_layout = op.create_table(
        "port_layout",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("range_first", sa.Integer(), nullable=True),
        sa.Column("range_last", sa.Integer(), nullable=True),
        sa.Column("block_size", sa.Integer(), nullable=True),
        sa.Column("synced_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_layout")),
        **MYSQL_OPTIONS,
    )
    # The single layout row: locking it serialises layout and exclusion changes.
    op.bulk_insert(port_layout, [{"id": 1}])
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "islands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pod_name", sa.String(length=63), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("owner_name", sa.String(length=200), nullable=False),
        sa.Column("branch", sa.String(length=63), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("node", sa.String(length=253), nullable=True),
        sa.Column("host_ip", sa.String(length=45), nullable=True),
        sa.Column("first_port", sa.Integer(), nullable=False),
        sa.Column("port_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("scheduled_at", UTC_DATETIME, nullable=True),
        sa.Column("ready_at", UTC_DATETIME, nullable=True),
        sa.Column("stopped_at", UTC_DATETIME, nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("ports_released_at", UTC_DATETIME, nullable=True),
        sa.Column("slack_channel", sa.String(length=32), nullable=True),
        sa.Column("slack_thread_ts", sa.String(length=32), nullable=True),
        sa.Column("clock_offset_s", sa.BigInteger(), nullable=False),
        sa.Column("overrides", sa.Text(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("registered_at", UTC_DATETIME, nullable=True),
        sa.Column("registration_token_hash", sa.String(length=64), nullable=True),
        sa.Column("request_key", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "state IN ('requested', 'creating', 'scheduled', 'running', 'ready', 'failed', 'stopping', 'stopped')",
            name=op.f("ck_islands_state"),
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_islands_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_islands")),
        sa.UniqueConstraint("request_key", name=op.f("uq_islands_request_key")),
        sqlite_autoincrement=True,
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("islands", schema=None) as batch_op:
        batch_op.create_index("ix_islands_owner_id_state", ["owner_id", "state"], unique=False)
        batch_op.create_index("ix_islands_state", ["state"], unique=False)

    op.create_table(
        "clock_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("island_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("requested_at", UTC_DATETIME, nullable=False),
        sa.Column("from_offset_s", sa.BigInteger(), nullable=False),
        sa.Column("to_offset_s", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", UTC_DATETIME, nullable=True),
        sa.Column("applied_at", UTC_DATETIME, nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("slack_channel", sa.String(length=32), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["island_id"], ["islands.id"], name=op.f("fk_clock_requests_island_id_islands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock_requests")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("clock_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clock_requests_island_id_state", ["island_id", "state"], unique=False
        )

    op.create_table(
        "port_blocks",
        sa.Column("first_port", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("island_id", sa.Integer(), nullable=True),
        sa.Column("held_since", UTC_DATETIME, nullable=True),
        sa.Column("excluded_reason", sa.String(length=200), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["island_id"], ["islands.id"], name=op.f("fk_port_blocks_island_id_islands")
        ),
        sa.PrimaryKeyConstraint("first_port", name=op.f("pk_port_blocks")),
        sa.UniqueConstraint("island_id", name=op.f("uq_port_blocks_island_id")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("port_blocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_port_blocks_island_id_first_port", ["island_id", "first_port"], unique=False
        )


def downgrade() -> None:
    # Indexes go with their tables (dropping one that a foreign key needs first fails on MySQL).
    for table in (
        "port_blocks",
        "clock_requests",
        "islands",
        "users",
        "port_layout",
        "excluded_ports",
        "audit_log",
    ):
        op.drop_table(table)
