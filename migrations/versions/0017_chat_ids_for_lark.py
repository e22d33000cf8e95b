"""chat ids wide enough for Lark's: a person's, a conversation's and a message's id

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

Slack's ids fit in 32 characters (``U0123ABCD``, ``C0123ABCD``, a message ts
``1733300000.123456``); Lark's are 35 (``ou_``, ``oc_``, ``om_`` and 32 hex digits). Every column
that keeps a chat's id becomes 64 characters: ``users.id`` (and ``islands.owner_id``, its
foreign key: dropped while both change, then made again), an island's chat and root message,
a clock request's asker, decider, chat and message, the audit log's actor and who last set a
pool's size. Widening keeps every value; going back is refused, naming the columns, while
any holds a longer id.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "islands": (("chat_channel", True), ("chat_thread", True)),
    "clock_requests": (
        ("requested_by", False),
        ("decided_by", True),
        ("chat_channel", True),
        ("chat_ts", True),
    ),
    "audit_log": (("actor", False),),
    "pools": (("size_set_by", True),),
}
OWNER_FK = "fk_islands_owner_id_users"


def _widen(old: int, new: int) -> None:
    with op.batch_alter_table("islands") as batch:
        batch.drop_constraint(OWNER_FK, type_="foreignkey")
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "id", existing_type=sa.String(old), type_=sa.String(new), existing_nullable=False
        )
    with op.batch_alter_table("islands") as batch:
        batch.alter_column(
            "owner_id", existing_type=sa.String(old), type_=sa.String(new), existing_nullable=False
        )
        batch.create_foreign_key(OWNER_FK, "users", ["owner_id"], ["id"])
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns:
                batch.alter_column(
                    name,
                    existing_type=sa.String(old),
                    type_=sa.String(new),
                    existing_nullable=nullable,
                )


def upgrade() -> None:
    _widen(32, 64)


def downgrade() -> None:
    """Refused, saying where, while a value would not fit (a Lark id): nothing is changed."""
    bind = op.get_bind()
    columns = {"users": ("id",), "islands": ("owner_id",)}
    for table, named in COLUMNS.items():
        columns[table] = columns.get(table, ()) + tuple(name for name, _nullable in named)
    too_long = [
        f"{table}.{name} ({count} rows)"
        for table, names in columns.items()
        for name in names
        if (
            count := bind.execute(
                sa.text(f"SELECT COUNT(*) FROM {table} WHERE LENGTH({name}) > 32")  # noqa: S608
            ).scalar_one()
        )
    ]
    if too_long:
        raise RuntimeError(
            "cannot go back before 0017: these hold ids longer than 32 characters (Lark's): "
            + ", ".join(too_long)
        )
    _widen(64, 32)
