"""claims die with their process

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

- ``deliveries.worker``: the heartbeat (a ``leases`` row named ``process:<instance>``) of the
  process that claimed the request. The claim is live only while that process is: a request
  whose worker died is carried out again within a heartbeat's ttl, and one whose worker lives
  keeps its claim however long its answer takes (up to the claim's cap). Claims made before
  this are NULL and live until their ``claim_until``, as before.
- ``outbox.worker``: the same for a notice's delivery attempt: a leader that died lets its
  notices go within a heartbeat, not after the claim's 20 s.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("deliveries", "outbox"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("worker", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("outbox", "deliveries"):
        # dropping a column rebuilds the table on SQLite: outbox keeps AUTOINCREMENT (0010)
        kwargs = {"sqlite_autoincrement": True} if table == "outbox" else {}
        with op.batch_alter_table(table, schema=None, table_kwargs=kwargs) as batch_op:
            batch_op.drop_column("worker")
