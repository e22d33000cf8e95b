"""What the team board reads that nothing else does: an island's history from the audit log,
the pending clock requests, and people's names (each in one query)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from bot.domain.records import ClockRecord
from bot.infra.storage.clock_requests import COLUMNS, PENDING, clock_record
from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry, ClockRequest, User

# what only reads an island (status, logs, list) is audited too, but is not its history
LOOKS = ("status", "logs", "list", "capacity", "help", "board")


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str  # a chat user id, ``island:<id>`` or ``system``
    action: str
    detail: dict[str, object]


class BoardReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def history(self, island_id: int, *, limit: int = 200) -> list[HistoryEntry]:
        """What happened to the island (the audit log's entries that changed something),
        oldest first, at most the ``limit`` latest."""

        def read(conn: Connection) -> list[HistoryEntry]:
            rows = conn.execute(
                select(AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.detail)
                .where(
                    AuditEntry.island_id == island_id,
                    AuditEntry.outcome == "ok",
                    AuditEntry.action.not_in(LOOKS),
                )
                .order_by(AuditEntry.id.desc())
                .limit(limit)
            ).all()
            return [HistoryEntry(r[0], r[1], r[2], dict(r[3] or {})) for r in reversed(rows)]

        return self.db.run(read, what="island history", read_only=True)

    def pending_clock_requests(self, *, limit: int = 200) -> list[ClockRecord]:
        """Clock requests waiting for a decision, oldest first."""

        def read(conn: Connection) -> list[ClockRecord]:
            rows = conn.execute(
                select(*COLUMNS)
                .where(ClockRequest.state == PENDING)
                .order_by(ClockRequest.id)
                .limit(limit)
            ).all()
            return [clock_record(r) for r in rows]

        return self.db.run(read, what="pending clock requests", read_only=True)

    def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """The display names the chat last gave for these users (those known)."""
        wanted = sorted({u for u in user_ids if u})
        if not wanted:
            return {}

        def read(conn: Connection) -> dict[str, str]:
            rows = conn.execute(select(User.id, User.display_name).where(User.id.in_(wanted))).all()
            return {r[0]: r[1] for r in rows}

        return self.db.run(read, what="user names", read_only=True)
