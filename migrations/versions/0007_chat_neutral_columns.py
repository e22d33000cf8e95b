"""chat-neutral column names

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Where an island's root message and a clock request's message live is a chat's channel and
message, whichever chat carries them (Slack today, Lark next): ``islands.slack_channel`` /
``slack_thread_ts`` become ``chat_channel`` / ``chat_thread``, ``clock_requests.slack_channel``
/ ``slack_ts`` become ``chat_channel`` / ``chat_ts``. Values are kept as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (old name, new name) of each renamed column; all are VARCHAR(32) NULL
RENAMES = {
    "islands": (("slack_channel", "chat_channel"), ("slack_thread_ts", "chat_thread")),
    "clock_requests": (("slack_channel", "chat_channel"), ("slack_ts", "chat_ts")),
}


def _rename(*, back: bool) -> None:
    for table, columns in RENAMES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for old, new in columns:
                source, target = (new, old) if back else (old, new)
                batch_op.alter_column(
                    source,
                    new_column_name=target,
                    existing_type=sa.String(length=32),
                    existing_nullable=True,
                )


def upgrade() -> None:
    _rename(back=False)


def downgrade() -> None:
    _rename(back=True)
