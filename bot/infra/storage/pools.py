"""The warm pools in the database, as their keeper and their admins see them: each branch's
pool islands, the people's islands waiting for room, the ``pools`` rows (a size set from chat,
a refresh asked by CI, the newest code registered), the day's claims and misses; and the
keeper's writes: new pool islands (an id and a port block each, like any start), and pool
islands recycled (stopping), each guarded so that a claim made meanwhile wins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.pool import (
    POOL_OWNER,
    POOL_OWNER_NAME,
    Member,
    Recycle,
    Streak,
    short_of_room,
)
from bot.domain.records import SYSTEM_ACTOR, Audit
from bot.domain.states import LIVE_VALUES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage import audit
from bot.infra.storage.allocation import new_island, upsert_user
from bot.infra.storage.database import Database
from bot.infra.storage.tables import CodeVersion, Island, Pool, PoolDay

Fence = Callable[[Connection], None]  # inside a transaction: raise unless this replica leads
HISTORY = 20  # the latest pool islands of a branch a failure streak is read from
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
    failures: int = 0
    failed_last_id: int | None = None
    held_until: datetime | None = None
    streak_from_id: int | None = None

    @property
    def streak(self) -> Streak:
        return Streak(self.failures, self.failed_last_id, self.held_until)


_ROW_COLUMNS = tuple(Pool.__table__.c[f.name] for f in fields(PoolRow))  # a row as PoolRow


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
                    Island.unschedulable_message,
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
                        r.id,
                        IslandState(r.state),
                        r.created_at,
                        r.code_version,
                        r.node is not None,
                        r.node is None and r.unschedulable_message is not None,
                    )
                )
            return {
                b: PoolMembers(tuple(kept.get(b, ())), stopping.get(b, 0))
                for b in set(kept) | set(stopping)
            }

        return self.db.run(read, what="pool members", read_only=True)

    def waiting_for_room(self) -> dict[str, list[int]]:
        """People's islands, per branch, that the scheduler could not place for want of
        resources (``short_of_room``), lowest id first."""

        def read(conn: Connection) -> dict[str, list[int]]:
            rows = conn.execute(
                select(Island.id, Island.branch, Island.unschedulable_message)
                .where(
                    Island.state == IslandState.CREATING.value,
                    Island.unschedulable_message.is_not(None),
                    Island.owner_id != POOL_OWNER,
                )
                .order_by(Island.id)
            ).all()
            waiting: dict[str, list[int]] = {}
            for r in rows:
                if short_of_room(r.unschedulable_message):
                    waiting.setdefault(str(r.branch), []).append(int(r.id))
            return waiting

        return self.db.run(read, what="islands waiting for room", read_only=True)

    def rows(self) -> dict[str, PoolRow]:
        def read(conn: Connection) -> dict[str, PoolRow]:
            return {
                r.branch: PoolRow(**dict(r._mapping)) for r in conn.execute(select(*_ROW_COLUMNS))
            }

        return self.db.run(read, what="pools", read_only=True)

    def history(self, branch: str, *, after: int | None) -> list[tuple[int, bool | None]]:
        """The branch's latest islands started as pool islands (still pooled or claimed
        since), newest first, those with ids above ``after`` only: (id, True: it was ready
        once, False: it failed before that, None: neither), for ``bot.domain.pool.streak``."""

        def read(conn: Connection) -> list[tuple[int, bool | None]]:
            rows = conn.execute(
                select(Island.id, Island.ready_at, Island.failure_reason, Island.claimed_at)
                .where(
                    Island.branch == branch,
                    Island.id > (after or 0),
                    or_(Island.owner_id == POOL_OWNER, Island.claimed_at.is_not(None)),
                )
                .order_by(Island.id.desc())
                .limit(HISTORY)
            ).all()
            return [(int(r.id), _outcome(r)) for r in rows]

        return self.db.run(read, what=f"{branch} pool's history", read_only=True)

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

    def fill(
        self, branch: str, count: int, *, size: int, lives: timedelta, target: int | None = None
    ) -> list[int]:
        """``count`` new pool islands of ``branch`` (ports of ``size``), each expiring after
        ``lives`` (a backstop: the keeper recycles them at the pool's max age first); fewer
        when the port blocks run out, or when that would make the pool larger than ``target``
        (counted under the lock of the branch's ``pools`` row: a keeper that lost the lead
        meanwhile and its successor cannot both fill it). Returns their ids."""

        def write(conn: Connection) -> list[int]:
            if self.fence is not None:
                self.fence(conn)
            now = self.clock()
            wanted = count
            if target is not None:
                _ensure(conn, branch)
                conn.execute(select(Pool.branch).where(Pool.branch == branch).with_for_update())
                kept = conn.execute(
                    select(func.count()).where(
                        Island.owner_id == POOL_OWNER,
                        Island.branch == branch,
                        Island.state.in_(_KEPT_STATES),
                    )
                ).scalar_one()
                wanted = min(count, max(target - int(kept), 0))
            if wanted <= 0:
                return []
            upsert_user(conn, POOL_OWNER, POOL_OWNER_NAME, now)
            made = []
            for _ in range(wanted):
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

    def note_streak(self, branch: str, streak: Streak) -> None:
        """The branch's pool islands' failure streak after the keeper's round."""

        def write(conn: Connection) -> None:
            if self.fence is not None:
                self.fence(conn)
            _ensure(conn, branch)
            conn.execute(
                update(Pool)
                .where(Pool.branch == branch)
                .values(
                    failures=streak.failures,
                    failed_last_id=streak.last_id,
                    held_until=streak.held_until,
                )
            )

        self.db.run(write, what=f"{branch} pool's failures")

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
            newest = conn.execute(select(func.max(Island.id))).scalar_one()
            conn.execute(  # the code changed: past failures say nothing of it
                update(Pool)
                .where(Pool.branch == branch)
                .values(
                    refreshed_at=now,
                    streak_from_id=newest,
                    failures=0,
                    failed_last_id=None,
                    held_until=None,
                )
            )
            stale = conn.execute(
                select(func.count()).where(
                    Island.owner_id == POOL_OWNER,
                    Island.branch == branch,
                    Island.state.in_(_KEPT_STATES),
                    Island.state != IslandState.FAILED.value,  # replaced anyway
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
    """An island of ``branch`` registered having booted ``version``. The branch's newest is
    the version first seen last: islands register as they boot, so a new version shows up with
    the first island that boots it, and one that booted old code registering late (a node CI
    has not reached yet) does not take the branch back to it."""
    row = {"branch": branch, "version": version, "first_seen_at": now}
    if conn.dialect.name == "mysql":
        first = mysql_insert(CodeVersion).values(row)
        conn.execute(first.on_duplicate_key_update(version=first.inserted.version))
    else:
        conn.execute(sqlite_insert(CodeVersion).values(row).on_conflict_do_nothing())
    newest = conn.execute(
        select(CodeVersion.version)
        .where(CodeVersion.branch == branch)
        .order_by(CodeVersion.first_seen_at.desc(), CodeVersion.version)
        .limit(1)
    ).scalar_one()
    _ensure(conn, branch)
    conn.execute(
        update(Pool)
        .where(Pool.branch == branch, Pool.code_version.is_distinct_from(newest))
        .values(code_version=newest, code_seen_at=now)
    )


def _outcome(row: Any) -> bool | None:
    """True: it was ready once (claimed: only ready ones are, and a restart since clears its
    ready time), False: it failed before that, None: neither (yet)."""
    if row.ready_at is not None or row.claimed_at is not None:
        return True
    return False if row.failure_reason is not None else None


def _ensure(conn: Connection, branch: str) -> None:
    """The branch's ``pools`` row exists (made empty if it did not)."""
    if conn.dialect.name == "mysql":
        made = mysql_insert(Pool).values(branch=branch)
        conn.execute(made.on_duplicate_key_update(branch=made.inserted.branch))
    else:
        conn.execute(sqlite_insert(Pool).values(branch=branch).on_conflict_do_nothing())


def _row(conn: Connection, branch: str) -> PoolRow:
    r = conn.execute(select(*_ROW_COLUMNS).where(Pool.branch == branch)).one()
    return PoolRow(**dict(r._mapping))
