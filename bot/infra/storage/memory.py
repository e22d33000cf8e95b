"""Islands' memory readings, kept so their owners are warned once before the kernel OOMKills
them (``bot.domain.memory_watch``): one transaction per reading of the whole namespace. A row
holds the island's current run only: it is deleted when the island leaves running/ready
(``forget_run``, in the transaction that moves it), so a restart starts afresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from bot.domain.lifecycle_rules import Notice
from bot.domain.memory_watch import WATCHED, MemoryPolicy, MemoryReading, MemoryWatch, judge
from bot.domain.pool import POOL_OWNER
from bot.infra.storage import outbox
from bot.infra.storage.database import Database, database_now
from bot.infra.storage.outbox import Fence
from bot.infra.storage.tables import Island, IslandMemory, MemorySample

SAMPLES_KEPT = timedelta(hours=1)  # the board's chart spans the last hour

WATCHED_VALUES = tuple(s.value for s in WATCHED)
# what the owner may start the island with instead, given its branch and the container near
# its limit (``memory_watch.more_memory``): None when nothing more can be had
Advice = Callable[[str, str, int | None], int | None]


@dataclass(frozen=True)
class Kept:
    """An island's last reading of its current run (shown in status, messages, notices)."""

    island_id: int
    used: int
    limit: int | None


@dataclass(frozen=True)
class Recorded:
    """What a reading of the namespace came to: the islands whose reading was kept (new
    samples of islands whose server runs), and those whose owners are warned now."""

    kept: list[int]
    warned: list[int]


def forget_run(conn: Connection, island_id: int) -> None:
    """Inside the caller's transaction: the island's run ended (it left running/ready)."""
    conn.execute(delete(IslandMemory).where(IslandMemory.island_id == island_id))


def last_reading(conn: Connection, island_id: int) -> int | None:
    """Inside the caller's transaction: the working set last read of the island's run."""
    used = conn.execute(
        select(IslandMemory.used_bytes).where(IslandMemory.island_id == island_id)
    ).scalar()
    return None if used is None else int(used)


_UPDATE = (
    update(IslandMemory)
    .where(IslandMemory.island_id == bindparam("island"))
    .values(
        {
            c: bindparam(c)
            for c in ("used_bytes", "limit_bytes", "read_at", "high_in_a_row", "warned")
        }
    )
)


class MemoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        readings: Sequence[tuple[MemoryReading, str]],
        *,
        policy: MemoryPolicy,
        advice: Advice | None = None,
        fence: Fence | None = None,
    ) -> Recorded:
        """Keep these readings (each with its container's name) of islands whose server runs
        (and no restart is asked for), each judged against what was kept of its run, and queue
        a ``MEMORY_HIGH`` notice for each owner to be warned now, in one transaction, the
        islands' rows locked in id order (``fence``: while the caller still leads). A reading
        no newer than the one kept (the same sample of the metrics API) is not judged again."""
        by_island = {r.island_id: (r, c) for r, c in readings}

        def write(conn: Connection) -> Recorded:
            if fence is not None:
                fence(conn)
            now = database_now(conn)
            watched = {
                row.id: row.branch
                for row in conn.execute(
                    select(Island.id, Island.branch)
                    .where(
                        Island.id.in_(sorted(by_island)),
                        Island.state.in_(WATCHED_VALUES),
                        Island.restart_requested_at.is_(None),
                        # a warm pool island is nobody's to warn; locking it would also make
                        # a claim skip it (SKIP LOCKED) and tell someone none was free
                        Island.owner_id != POOL_OWNER,
                    )
                    .order_by(Island.id)
                    .with_for_update()
                )
            }
            kept = {
                row.island_id: (MemoryWatch(row.high_in_a_row, row.warned), row.read_at)
                for row in conn.execute(
                    select(
                        IslandMemory.island_id,
                        IslandMemory.high_in_a_row,
                        IslandMemory.warned,
                        IslandMemory.read_at,
                    )
                    .where(IslandMemory.island_id.in_(sorted(watched)))
                    .with_for_update()
                )
            }
            updates, inserts, result = [], [], Recorded([], [])
            for island_id in sorted(watched):
                reading, container = by_island[island_id]
                watch, read_at = kept.get(island_id, (MemoryWatch(), None))
                if read_at is not None and reading.at <= read_at:
                    continue  # the same sample as last time: nothing new to judge
                verdict = judge(reading, watch, policy)
                row = {
                    "used_bytes": reading.used,
                    "limit_bytes": reading.limit,
                    "read_at": reading.at,
                    "high_in_a_row": verdict.watch.high_in_a_row,
                    "warned": verdict.watch.warned,
                }
                if island_id in kept:
                    updates.append({"island": island_id, **row})
                else:
                    inserts.append({"island_id": island_id, **row})
                result.kept.append(island_id)
                if verdict.warn:
                    result.warned.append(island_id)
                    more = advice(watched[island_id], container, reading.limit) if advice else None
                    detail = {"used": reading.used, "limit": reading.limit, "more": more}
                    outbox.add(conn, island_id, [(Notice.MEMORY_HIGH, detail)], at=now)
            if inserts:  # the islands' rows are locked: no other leader inserts these
                conn.execute(insert(IslandMemory), inserts)
            if updates:
                conn.execute(_UPDATE, updates)
            samples = [
                {k: r[k] for k in ("island_id", "used_bytes", "limit_bytes", "read_at")}
                for r in (*inserts, *({"island_id": u["island"], **u} for u in updates))
            ]
            if samples:
                conn.execute(insert(MemorySample), samples)
            conn.execute(delete(MemorySample).where(MemorySample.read_at < now - SAMPLES_KEPT))
            return result

        if not by_island:
            return Recorded([], [])
        return self.db.run(write, what="record memory readings")

    def last(self, island_ids: Sequence[int]) -> dict[int, Kept]:
        """The islands' last readings of their current runs (those read at all)."""

        def read(conn: Connection) -> dict[int, Kept]:
            rows = conn.execute(
                select(
                    IslandMemory.island_id, IslandMemory.used_bytes, IslandMemory.limit_bytes
                ).where(IslandMemory.island_id.in_(island_ids))
            ).all()
            return {r[0]: Kept(r[0], r[1], r[2]) for r in rows}

        return self.db.run(read, what="memory readings", read_only=True)

    def samples(self, island_id: int, *, since: datetime) -> list[tuple[datetime, int, int | None]]:
        """The island's readings (time, working set, limit) since ``since``, oldest first."""

        def read(conn: Connection) -> list[tuple[datetime, int, int | None]]:
            rows = conn.execute(
                select(MemorySample.read_at, MemorySample.used_bytes, MemorySample.limit_bytes)
                .where(MemorySample.island_id == island_id, MemorySample.read_at >= since)
                .order_by(MemorySample.read_at)
            ).all()
            return [(r[0], r[1], r[2]) for r in rows]

        return self.db.run(read, what="memory samples", read_only=True)
