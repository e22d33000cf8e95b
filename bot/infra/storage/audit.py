"""The append-only audit log: one row for every command and every state change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert

from bot.domain.records import Audit
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry, Base

# Built once: every command and every state change writes one.
_INSERT = insert(Base.metadata.tables[AuditEntry.__tablename__])


def record(conn: Connection, entry: Audit, *, at: datetime) -> None:
    """Append ``entry`` inside the caller's transaction."""
    conn.execute(
        _INSERT,
        {
            "at": at,
            "actor": entry.actor,
            "action": entry.action,
            "island_id": entry.island_id,
            "outcome": entry.outcome.value,
            "detail": dict(entry.detail),
        },
    )


class AuditLog:
    """Entries that stand alone (a refusal whose change was rolled back, a look)."""

    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def append(self, entry: Audit) -> None:
        self.db.run(lambda conn: record(conn, entry, at=self.clock()), what=f"audit {entry.action}")
