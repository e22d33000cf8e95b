"""Islands' memory readings, kept so their owners are warned once before the kernel OOMKills
them (``bot.domain.memory_watch``): one transaction per reading of the whole namespace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from bot.domain.lifecycle_rules import Notice
from bot.domain.memory_watch import MemoryPolicy, MemoryReading, MemoryWatch, judge
from bot.domain.states import IslandState
from bot.infra.storage import outbox
from bot.infra.storage.database import Database, database_now
from bot.infra.storage.outbox import Fence
from bot.infra.storage.tables import Island, IslandMemory

# a warning is worth giving only while the island's server runs
WATCHED = (IslandState.RUNNING.value, IslandState.READY.value)


@dataclass(frozen=True)
class Kept:
    """An island's last reading as kept (shown in status, root messages and notices)."""

    island_id: int
    used: int
    limit: int | None
    container: str
    read_at: datetime


class MemoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        readings: Sequence[tuple[MemoryReading, str]],
        *,
        policy: MemoryPolicy,
        fence: Fence | None = None,
    ) -> list[int]:
        """Keep these readings (each with its container's name) of islands whose server
        runs, judge each against what was kept, and queue a ``MEMORY_HIGH`` notice for each
        island whose owner is to be warned now, all in one transaction (``fence``: while the
        caller still leads). Returns the islands warned."""

        def write(conn: Connection) -> list[int]:
            if fence is not None:
                fence(conn)
            now = database_now(conn)
            ids = [r.island_id for r, _container in readings]
            watched = set(
                conn.execute(
                    select(Island.id).where(Island.id.in_(ids), Island.state.in_(WATCHED))
                ).scalars()
            )
            kept = {
                row.island_id: MemoryWatch(row.high_in_a_row, row.warned)
                for row in conn.execute(
                    select(IslandMemory.island_id, IslandMemory.high_in_a_row, IslandMemory.warned)
                    .where(IslandMemory.island_id.in_(watched))
                    .with_for_update()
                )
            }
            updates, inserts, warned = [], [], []
            for reading, container in readings:
                if reading.island_id not in watched:
                    continue
                verdict = judge(reading, kept.get(reading.island_id, MemoryWatch()), policy)
                row = {
                    "used_bytes": reading.used,
                    "limit_bytes": reading.limit,
                    "container": container[:63],
                    "read_at": reading.at,
                    "high_in_a_row": verdict.watch.high_in_a_row,
                    "warned": verdict.watch.warned,
                }
                if reading.island_id in kept:
                    updates.append({"island": reading.island_id, **row})
                else:
                    inserts.append({"island_id": reading.island_id, **row})
                if verdict.warn:
                    warned.append(reading.island_id)
                    detail = {"used": reading.used, "limit": reading.limit, "container": container}
                    outbox.add(conn, reading.island_id, [(Notice.MEMORY_HIGH, detail)], at=now)
            if inserts:
                conn.execute(insert(IslandMemory), inserts)
            if updates:
                conn.execute(
                    update(IslandMemory)
                    .where(IslandMemory.island_id == bindparam("island"))
                    .values(
                        {
                            column: bindparam(column)
                            for column in (
                                "used_bytes",
                                "limit_bytes",
                                "container",
                                "read_at",
                                "high_in_a_row",
                                "warned",
                            )
                        }
                    ),
                    updates,
                )
            return warned

        return self.db.run(write, what="record memory readings")

    def last(self, island_ids: Sequence[int]) -> dict[int, Kept]:
        """The islands' last readings kept (those read at all)."""

        def read(conn: Connection) -> dict[int, Kept]:
            rows = conn.execute(
                select(
                    IslandMemory.island_id,
                    IslandMemory.used_bytes,
                    IslandMemory.limit_bytes,
                    IslandMemory.container,
                    IslandMemory.read_at,
                ).where(IslandMemory.island_id.in_(island_ids))
            ).all()
            return {r.island_id: Kept(r[0], r[1], r[2], r[3], r[4]) for r in rows}

        return self.db.run(read, what="memory readings", read_only=True)
