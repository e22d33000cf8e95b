"""The warm pools in the database, as their keeper and their admins see them: each branch's
pool islands, the people's islands waiting for room, the ``pools`` rows (a size set from chat,
a refresh asked by CI, the newest code registered), the day's claims and misses; and the
keeper's writes: new pool islands (an id and a port block each, like any start), and pool
islands recycled (stopping), each guarded so that a claim made meanwhile wins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.pool import POOL_OWNER, POOL_OWNER_NAME, Member, Recycle
from bot.domain.records import SYSTEM_ACTOR, Audit
from bot.domain.states import LIVE_VALUES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage import audit
from bot.infra.storage.allocation import new_island, upsert_user
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Island, Pool, PoolDay

Fence = Callable[[Connection], None]  # inside a transaction: raise unless this replica leads
_KEPT_STATES = tuple(v for v in LIVE_VALUES if v != IslandState.STOPPING.value)


@dataclass(frozen=True)
class PoolRow:
    """A branch's ``pools`` row (every field None: it has none yet)."""

    branch: str
    size: int | None = None  # set by an admin from chat
    size_set_by: str | None = None
    size_set_at: datetime | None = None
    refreshed_at: datetime | None = None
    code_version: str | None = None
    code_seen_at: datetime | None = None


@dataclass(frozen=True)
class PoolMembers:
    """A branch's pool islands: those kept (live, not stopping) and how many are stopping."""

    members: tuple[Member, ...] = ()
    stopping: int = 0

    @property
    def ready(self) -> int:
        return sum(m.state == IslandState.READY for m in self.members)


@dataclass(frozen=True)
class PoolDayCount:
    claims: int = 0
    misses: int = 0


class PoolStore:
    def __init__(self, db: Database, *, clock: Clock = utcnow, fence: Fence | None = None) -> None:
        """``fence``: the leader's, checked in the transaction of every keeper's write (a
        keeper paused past its lease fills and recycles nothing)."""
        self.db = db
        self.clock = clock
        self.fence = fence

    # ---- reading ------------------------------------------------------------------------------

    def members(self) -> dict[str, PoolMembers]:
        """Every branch's pool islands (branches without any are absent)."""

        def read(conn: Connection) -> dict[str, PoolMembers]:
            rows = conn.execute(
                select(
                    Island.id,
                    Island.branch,
                    Island.state,
                    Island.created_at,
                    Island.code_version,
                    Island.node,
                )
                .where(Island.owner_id == POOL_OWNER, Island.state.in_(LIVE_VALUES))
                .order_by(Island.id)
            ).all()
            kept: dict[str, list[Member]] = {}
            stopping: dict[str, int] = {}
            for r in rows:
                if r.state == IslandState.STOPPING.value:
                    stopping[r.branch] = stopping.get(r.branch, 0) + 1
                    continue
                kept.setdefault(r.branch, []).append(
                    Member(
                        r.id, IslandState(r.state), r.created_at, r.code_version, r.node is not None
                    )
                )
            return {
                b: PoolMembers(tuple(kept.get(b, ())), stopping.get(b, 0))
                for b in set(kept) | set(stopping)
            }

        return self.db.run(read, what="pool members", read_only=True)

    def waiting_for_room(self) -> dict[str, int]:
        """People's islands, per branch, that the scheduler could not place yet."""

        def read(conn: Connection) -> dict[str, int]:
            rows = conn.execute(
                select(Island.branch, func.count())
                .where(
                    Island.state == IslandState.CREATING.value,
                    Island.unschedulable_message.is_not(None),
                    Island.owner_id != POOL_OWNER,
                )
                .group_by(Island.branch)
            ).all()
            return {str(branch): int(n) for branch, n in rows}

        return self.db.run(read, what="islands waiting for room", read_only=True)

    def rows(self) -> dict[str, PoolRow]:
        def read(conn: Connection) -> dict[str, PoolRow]:
            return {
                r.branch: PoolRow(**dict(r._mapping))
                for r in conn.execute(
                    select(
                        Pool.branch,
                        Pool.size,
                        Pool.size_set_by,
                        Pool.size_set_at,
                        Pool.refreshed_at,
                        Pool.code_version,
                        Pool.code_seen_at,
                    )
                )
            }

        return self.db.run(read, what="pools", read_only=True)

    def today(self) -> dict[str, PoolDayCount]:
        """Each branch's claims and misses of the current UTC day."""
        day = self.clock().strftime("%Y-%m-%d")

        def read(conn: Connection) -> dict[str, PoolDayCount]:
            rows = conn.execute(
                select(PoolDay.branch, func.sum(PoolDay.claims), func.sum(PoolDay.misses))
                .where(PoolDay.day == day)
                .group_by(PoolDay.branch)
            )
            return {str(b): PoolDayCount(int(c), int(m)) for b, c, m in rows}

        return self.db.run(read, what="pool day counts", read_only=True)

    # ---- the keeper's writes --------------------------------------------------------------------

    def fill(self, branch: str, count: int, *, size: int, lives: timedelta) -> list[int]:
        """``count`` new pool islands of ``branch`` (ports of ``size``), each expiring after
        ``lives`` (a backstop: the keeper recycles them at the pool's max age first). Fewer
        when the port blocks run out. Returns their ids."""

        def write(conn: Connection) -> list[int]:
            if self.fence is not None:
                self.fence(conn)
            now = self.clock()
            upsert_user(conn, POOL_OWNER, POOL_OWNER_NAME, now)
            made = []
            for _ in range(count):
                island = new_island(
                    conn,
                    size=size,
                    owner_id=POOL_OWNER,
                    owner_name=POOL_OWNER_NAME,
                    branch=branch,
                    now=now,
                    expires_at=now + lives,
                )
                if island is None:
                    break
                made.append(island[0])
                audit.record(
                    conn,
                    Audit(
                        SYSTEM_ACTOR,
                        "pool:fill",
                        island_id=island[0],
                        detail={"branch": branch, "first_port": island[2]},
                    ),
                    at=now,
                )
            return made

        return self.db.run(write, what=f"fill {branch} pool")

    def recycle(self, items: Sequence[tuple[int, IslandState, Recycle]]) -> list[int]:
        """Stop these pool islands (each seen in that state), in one transaction; one claimed
        or changed meanwhile is left alone. Returns those now stopping."""

        def write(conn: Connection) -> list[int]:
            if self.fence is not None:
                self.fence(conn)
            now = self.clock()
            done = []
            for island_id, seen, why in sorted(items):
                moved = conn.execute(
                    update(Island)
                    .where(
                        Island.id == island_id,
                        Island.owner_id == POOL_OWNER,
                        Island.state == seen.value,
                    )
                    .values(state=IslandState.STOPPING.value, restart_requested_at=None)
                ).rowcount
                if not moved:
                    continue
                done.append(island_id)
                audit.record(
                    conn,
                    Audit(
                        SYSTEM_ACTOR,
                        "pool:recycle",
                        island_id=island_id,
                        detail={"from": seen.value, "why": why.value},
                    ),
                    at=now,
                )
            return done

        return self.db.run(write, what="recycle pool islands")

    # ---- steering -------------------------------------------------------------------------------

    def set_size(self, branch: str, size: int | None, *, by: str) -> PoolRow:
        """An admin's size for the branch's pool (None: back to the deployment's), audited."""

        def write(conn: Connection) -> PoolRow:
            now = self.clock()
            _ensure(conn, branch)
            conn.execute(
                update(Pool)
                .where(Pool.branch == branch)
                .values(size=size, size_set_by=by, size_set_at=now)
            )
            audit.record(
                conn, Audit(by, "pool:size", detail={"branch": branch, "size": size}), at=now
            )
            return _row(conn, branch)

        return self.db.run(write, what=f"size of {branch} pool")

    def refresh(self, branch: str, *, by: str) -> int:
        """The branch's code changed (CI says so): its pool islands started before now are
        not handed out any more (the keeper recycles them). Returns how many that is."""

        def write(conn: Connection) -> int:
            now = self.clock()
            _ensure(conn, branch)
            conn.execute(update(Pool).where(Pool.branch == branch).values(refreshed_at=now))
            stale = conn.execute(
                select(func.count()).where(
                    Island.owner_id == POOL_OWNER,
                    Island.branch == branch,
                    Island.state.in_(_KEPT_STATES),
                    Island.created_at < now,
                )
            ).scalar_one()
            audit.record(
                conn,
                Audit(by, "pool:refresh", detail={"branch": branch, "stale": int(stale)}),
                at=now,
            )
            return int(stale)

        return self.db.run(write, what=f"refresh {branch} pool")


def note_code_version(conn: Connection, branch: str, version: str, now: datetime) -> None:
    """An island of ``branch`` registered having booted ``version``: the branch's newest from
    now on (registrations come as islands boot, so the latest is the newest code)."""
    _ensure(conn, branch)
    conn.execute(
        update(Pool)
        .where(Pool.branch == branch, Pool.code_version.is_distinct_from(version))
        .values(code_version=version, code_seen_at=now)
    )


def _ensure(conn: Connection, branch: str) -> None:
    """The branch's ``pools`` row exists (made empty if it did not)."""
    if conn.dialect.name == "mysql":
        conn.execute(mysql_insert(Pool).values(branch=branch).prefix_with("IGNORE"))
    else:
        conn.execute(sqlite_insert(Pool).values(branch=branch).on_conflict_do_nothing())


def _row(conn: Connection, branch: str) -> PoolRow:
    r = conn.execute(
        select(
            Pool.branch,
            Pool.size,
            Pool.size_set_by,
            Pool.size_set_at,
            Pool.refreshed_at,
            Pool.code_version,
            Pool.code_seen_at,
        ).where(Pool.branch == branch)
    ).one()
    return PoolRow(**dict(r._mapping))
