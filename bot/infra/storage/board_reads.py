"""What the team board reads that nothing else does: every live island's line with its last
memory reading and the clock requests waiting (in one transaction, only the columns shown: the
board reads them every second while anyone watches), an island's history from the audit log,
and people's names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select

from bot.domain.records import ClockRecord
from bot.domain.states import LIVE_VALUES, IslandState
from bot.infra.storage.clock_requests import COLUMNS, PENDING, clock_record
from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry, ClockRequest, Island, IslandMemory, User

# what only reads an island (status, logs, list) is audited too, but is not its history
LOOKS = ("status", "logs", "list", "capacity", "help", "board")


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str  # a chat user id, ``island:<id>`` or ``system``
    action: str
    detail: dict[str, object]


@dataclass(frozen=True, slots=True)
class IslandLine:
    """What the board shows of a live island."""

    id: int
    owner_id: str
    owner_name: str
    branch: str
    state: IslandState
    first_port: int
    node: str | None
    host_ip: str | None
    clock_offset_s: int
    note: str | None
    expires_at: datetime
    failure_reason: str | None


_LINE = (
    Island.id,
    Island.owner_id,
    Island.owner_name,
    Island.branch,
    Island.state,
    Island.first_port,
    Island.node,
    Island.host_ip,
    Island.clock_offset_s,
    Island.note,
    Island.expires_at,
    Island.failure_reason,
)


@dataclass(frozen=True)
class BoardRead:
    islands: list[IslandLine]  # lowest id first
    memory: dict[int, tuple[int, int | None]]  # island id -> last reading (used, limit)
    clocks: list[ClockRecord]  # waiting for a decision, oldest first
    names: dict[str, str]  # display names of those who asked, and of ``people``


class BoardReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def board(self, *, people: Iterable[str] = (), clock_limit: int = 200) -> BoardRead:
        """The live islands, their last memory readings, the pending clock requests and the
        names of those who asked and of ``people``, read in one transaction (on MySQL's READ
        COMMITTED each statement sees what was committed when it ran)."""

        def read(conn: Connection) -> BoardRead:
            rows = conn.execute(
                select(*_LINE).where(Island.state.in_(LIVE_VALUES)).order_by(Island.id)
            ).all()
            lines = [
                IslandLine(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    IslandState(r[4]),
                    r[5],
                    r[6],
                    r[7],
                    r[8],
                    r[9],
                    r[10],
                    r[11],
                )
                for r in rows
            ]
            memory = {
                r[0]: (r[1], r[2])
                for r in conn.execute(
                    select(
                        IslandMemory.island_id, IslandMemory.used_bytes, IslandMemory.limit_bytes
                    )
                )
            }
            clocks = self._pending(conn, clock_limit)
            wanted = {c.requested_by for c in clocks} | set(people) if clocks else set()
            return BoardRead(lines, memory, clocks, self._names(conn, wanted))

        return self.db.run(read, what="the board", read_only=True)

    def history(self, island_id: int, *, limit: int = 200) -> list[HistoryEntry]:
        """What happened to the island (the audit log's entries that changed something, and
        clock changes that failed), oldest first, at most the ``limit`` latest."""

        def read(conn: Connection) -> list[HistoryEntry]:
            rows = conn.execute(
                select(AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.detail)
                .where(
                    AuditEntry.island_id == island_id,
                    or_(AuditEntry.outcome == "ok", AuditEntry.action == "clock:failed"),
                    AuditEntry.action.not_in(LOOKS),
                )
                .order_by(AuditEntry.id.desc())
                .limit(limit)
            ).all()
            return [HistoryEntry(r[0], r[1], r[2], dict(r[3] or {})) for r in reversed(rows)]

        return self.db.run(read, what="island history", read_only=True)

    @staticmethod
    def _pending(conn: Connection, limit: int) -> list[ClockRecord]:
        """Clock requests waiting for a decision, oldest first."""
        rows = conn.execute(
            select(*COLUMNS)
            .where(ClockRequest.state == PENDING)
            .order_by(ClockRequest.id)
            .limit(limit)
        ).all()
        return [clock_record(r) for r in rows]

    def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """The display names the chat last gave for these users (those known)."""
        wanted = {u for u in user_ids if u}
        if not wanted:
            return {}
        return self.db.run(lambda c: self._names(c, wanted), what="user names", read_only=True)

    @staticmethod
    def _names(conn: Connection, user_ids: set[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        rows = conn.execute(
            select(User.id, User.display_name).where(User.id.in_(sorted(user_ids)))
        ).all()
        return {r[0]: r[1] for r in rows}
