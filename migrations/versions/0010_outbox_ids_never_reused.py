"""outbox ids are never reused (SQLite)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

A notice's key is ``outbox-{id}`` and housekeeping deletes notices sent a week ago. Without
``AUTOINCREMENT`` SQLite hands out the highest id in use plus one, so after a quiet week the
ids start again and a new notice can carry an old message's key. SQLite cannot add
``AUTOINCREMENT`` to a table in place: ``outbox`` is rebuilt with it (its rows copied, ids
kept; the new sequence starts above the highest id copied). MySQL/MariaDB: nothing to do, an
``AUTO_INCREMENT`` counter never goes back below ids handed out.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_outbox(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "outbox",
        schema=None,
        recreate="always",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ) as batch_op:
        if not autoincrement:  # SQLite writes an AUTOINCREMENT key inline, without its name
            batch_op.create_primary_key("pk_outbox", ["id"])


def upgrade() -> None:
    _rebuild_outbox(autoincrement=True)


def downgrade() -> None:
    _rebuild_outbox(autoincrement=False)
