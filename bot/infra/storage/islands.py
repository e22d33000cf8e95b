"""Reading islands and recording how they end (the lifecycle engine builds on this)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from sqlalchemy import Connection, func, select, update

from bot.domain.errors import NotFound
from bot.domain.records import IslandRecord
from bot.domain.states import LIVE_STATES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage import audit
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Base, Island, OutboxMessage
from bot.words import messages

# The one shape of an island: its columns are the record's fields, whatever they are.
COLUMNS = tuple(Base.metadata.tables[Island.__tablename__].c[f.name] for f in fields(IslandRecord))


def island_record(row: Any) -> IslandRecord:
    """A row of ``COLUMNS`` as the domain's record."""
    values = dict(row._mapping)
    values["state"] = IslandState(values["state"])
    values["overrides"] = values["overrides"] or {}
    return IslandRecord(**values)


class IslandStore:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def get(self, island_id: int) -> IslandRecord:
        def read(conn: Connection) -> IslandRecord:
            row = conn.execute(select(*COLUMNS).where(Island.id == island_id)).first()
            if row is None:
                raise NotFound(messages.island_not_found(island_id))
            return island_record(row)

        return self.db.run(read, what="get island", read_only=True)

    def live(self, *, owner_id: str | None = None, branch: str | None = None) -> list[IslandRecord]:
        """Every island that is not stopped (of one owner, one branch), lowest id first."""

        def read(conn: Connection) -> list[IslandRecord]:
            query = select(*COLUMNS).where(Island.state.in_([s.value for s in LIVE_STATES]))
            if owner_id is not None:
                query = query.where(Island.owner_id == owner_id)
            if branch is not None:
                query = query.where(Island.branch == branch)
            rows = conn.execute(query.order_by(Island.id)).all()
            return [island_record(r) for r in rows]

        return self.db.run(read, what="live islands", read_only=True)

    def in_states(self, states: Iterable[IslandState]) -> list[int]:
        """The ids of the islands in any of ``states``, lowest first."""

        def read(conn: Connection) -> list[int]:
            query = select(Island.id).where(Island.state.in_([s.value for s in states]))
            return [int(r[0]) for r in conn.execute(query.order_by(Island.id))]

        return self.db.run(read, what="islands by state", read_only=True)

    def counts(self) -> list[tuple[str, str, int]]:
        """(state, branch, number of islands) for every state but stopped."""

        def read(conn: Connection) -> list[tuple[str, str, int]]:
            query = (
                select(Island.state, Island.branch, func.count())
                .where(Island.state.in_([s.value for s in LIVE_STATES]))
                .group_by(Island.state, Island.branch)
            )
            return [(str(s), str(b), int(n)) for s, b, n in conn.execute(query)]

        return self.db.run(read, what="island counts", read_only=True)

    def unsent_notices(self) -> int:
        """Lifecycle notices written but not yet delivered to the chat."""

        def read(conn: Connection) -> int:
            query = select(func.count()).select_from(OutboxMessage)
            return int(conn.execute(query.where(OutboxMessage.sent_at.is_(None))).scalar_one())

        return self.db.run(read, what="unsent notices", read_only=True)

    def mark_stopped(self, island_id: int, *, actor: str, reason: str | None = None) -> bool:
        """Record that the island is finished and its pod gone. False if it already was."""

        def write(conn: Connection) -> bool:
            now = self.clock()
            values: dict[str, object] = {"state": IslandState.STOPPED.value, "stopped_at": now}
            if reason is not None:  # a failed island keeps the reason it failed for
                values["failure_reason"] = reason
            changed = conn.execute(
                update(Island)
                .where(Island.id == island_id, Island.state != IslandState.STOPPED.value)
                .values(values)
            ).rowcount
            if changed == 0:
                if conn.execute(select(Island.id).where(Island.id == island_id)).first() is None:
                    raise NotFound(messages.island_not_found(island_id))
                return False
            audit.record(
                conn,
                at=now,
                actor=actor,
                action="state:stopped",
                outcome=audit.Outcome.OK,
                island_id=island_id,
                detail={"reason": reason} if reason else {},
            )
            return True

        return self.db.run(write, what="mark stopped")
