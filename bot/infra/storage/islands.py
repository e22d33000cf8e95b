"""Islands in the database: reading them as the domain's ``IslandRecord``, and changing one in
a transaction that locks its row, lets the use case decide on what it sees, and writes the
change, its notices and its audit entry together."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, func, or_, select, update

from bot.domain.errors import NotFound, Refusal
from bot.domain.lifecycle_rules import FailureKind, Notice
from bot.domain.memory_watch import WATCHED
from bot.domain.pool import POOL_OWNER
from bot.domain.records import IslandChange, IslandRecord, NoticeSpec, WorkTicket
from bot.domain.states import LIVE_VALUES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage import audit, intake, memory, outbox
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Base, Island, OutboxMessage

T = TypeVar("T")
_TABLE = Base.metadata.tables[Island.__tablename__]
# The one shape of an island: its columns are the record's fields, whatever they are.
COLUMNS = tuple(_TABLE.c[f.name] for f in fields(IslandRecord))


def island_record(row: Any) -> IslandRecord:
    """A row of ``COLUMNS`` as the domain's record."""
    values = dict(row._mapping)
    values["state"] = IslandState(values["state"])
    values["overrides"] = values["overrides"] or {}
    return IslandRecord(**values)


def read_island(conn: Connection, island_id: int, *, lock: bool = False) -> IslandRecord:
    """The island (its row locked until the transaction ends, with ``lock``), or NotFound."""
    query = select(*COLUMNS).where(_TABLE.c.id == island_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(Refusal.ISLAND_NOT_FOUND, island_id=island_id)
    return island_record(row)


def write_change(conn: Connection, island_id: int, change: IslandChange, *, at: Any) -> None:
    """``change`` inside the caller's transaction: values, notices (an OOM kill's with the
    island's last memory reading), audit entry."""
    if change.updates:
        conn.execute(update(Island).where(Island.id == island_id).values(dict(change.updates)))
    outbox.add(conn, island_id, [_with_reading(conn, island_id, n) for n in change.notices], at=at)
    state = change.updates.get("state")
    if state is not None and IslandState(state) not in WATCHED:
        memory.forget_run(conn, island_id)  # its run ended: a restart starts afresh
    if change.audit is not None:
        audit.record(conn, change.audit, at=at)


def _with_reading(conn: Connection, island_id: int, notice: NoticeSpec) -> NoticeSpec:
    """An OOMKilled failure names the island's last memory reading, when there is one."""
    kind, detail = notice
    if kind != Notice.FAILED or detail.get("kind") != FailureKind.OOM_KILLED.value:
        return notice
    used = memory.last_reading(conn, island_id)
    return notice if used is None else (kind, {**detail, "last_used": used})


class IslandStore:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    # ---- reading ------------------------------------------------------------------------------

    def get(self, island_id: int) -> IslandRecord:
        return self.db.run(
            lambda conn: read_island(conn, island_id), what="get island", read_only=True
        )

    def many(self, island_ids: Sequence[int]) -> list[IslandRecord]:
        """These islands (those that exist), lowest id first, in one query."""

        def read(conn: Connection) -> list[IslandRecord]:
            rows = conn.execute(
                select(*COLUMNS).where(Island.id.in_(island_ids)).order_by(Island.id)
            ).all()
            return [island_record(r) for r in rows]

        return self.db.run(read, what="islands", read_only=True)

    def live(
        self,
        *,
        owner_id: str | None = None,
        branch: str | None = None,
        people: bool = False,
    ) -> list[IslandRecord]:
        """Every island that is not stopped (of one owner, one branch; ``people``: warm pool
        islands left out), lowest id first."""

        def read(conn: Connection) -> list[IslandRecord]:
            query = select(*COLUMNS).where(Island.state.in_(LIVE_VALUES))
            if people:
                query = query.where(Island.owner_id != POOL_OWNER)
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

    def counts(self, *, pooled: bool | None = None) -> list[tuple[str, str, int]]:
        """(state, branch, number of islands) for every state but stopped (``pooled``: only
        warm pool islands, True, or only people's, False)."""

        def read(conn: Connection) -> list[tuple[str, str, int]]:
            query = select(Island.state, Island.branch, func.count()).where(
                Island.state.in_(LIVE_VALUES)
            )
            if pooled is not None:
                query = query.where(
                    Island.owner_id == POOL_OWNER if pooled else Island.owner_id != POOL_OWNER
                )
            query = query.group_by(Island.state, Island.branch)
            return [(str(s), str(b), int(n)) for s, b, n in conn.execute(query)]

        return self.db.run(read, what="island counts", read_only=True)

    # ---- changing -----------------------------------------------------------------------------

    def change(
        self,
        island_id: int,
        decide: Callable[[IslandRecord], tuple[IslandChange | None, T]],
        *,
        what: str,
        ticket: WorkTicket | None = None,
    ) -> T:
        """Lock the island's row, ``decide`` on what it holds (it may raise to refuse: then
        nothing is written), write the change it returns, if any; returns ``decide``'s result.
        ``decide`` runs again when the database asks for the transaction to be retried.
        ``ticket``: the request this change carries out, marked done in the same transaction."""

        def work(conn: Connection) -> T:
            change, result = decide(read_island(conn, island_id, lock=True))
            if change is not None:
                write_change(conn, island_id, change, at=self.clock())
            if ticket is not None:  # the request is done with its change, or not at all
                intake.finish(conn, ticket)
            return result

        return self.db.run(work, what=what)

    def attach_thread(self, island_id: int, channel: str, thread: str) -> bool:
        """Record the island's root message (its own); False when one was recorded already."""

        def write(conn: Connection) -> bool:
            return bool(
                conn.execute(
                    update(Island)
                    .where(Island.id == island_id, Island.chat_thread.is_(None))
                    .values(
                        chat_channel=channel, chat_thread=thread, chat_digest=False, digest_of=None
                    )
                ).rowcount
            )

        return self.db.run(write, what="attach thread")

    def attach_digest(
        self,
        island_ids: Sequence[int],
        channel: str,
        thread: str,
        *,
        planned: int | None = None,
    ) -> int:
        """Record a digest as the root message of these islands (those without one yet), and
        of every island ``planned`` into it (``digest_of``: also those whose attempt is still
        to come), in one transaction; how many were attached."""

        def write(conn: Connection) -> int:
            which: ColumnElement[bool] = Island.id.in_(island_ids)
            if planned is not None:
                which = or_(which, Island.digest_of == planned)
            return int(
                conn.execute(
                    update(Island)
                    .where(which, Island.chat_thread.is_(None))
                    .values(chat_channel=channel, chat_thread=thread, chat_digest=True)
                ).rowcount
            )

        return self.db.run(write, what="attach digest")

    def bind_to_digest(self, island_ids: Sequence[int], *, bound: bool = True) -> None:
        """Mark islands not announced yet as going into a digest (a burst is being announced
        in their channel): their notices go to their owners from now on. ``bound=False``:
        no longer (each will have a root message of its own); never one planned into a
        digest that may have been posted (``plan_digests``)."""

        def write(conn: Connection) -> None:
            conn.execute(
                update(Island)
                .where(
                    Island.id.in_(island_ids),
                    Island.chat_thread.is_(None),
                    Island.digest_of.is_(None),
                )
                .values(chat_digest=bound)
            )

        self.db.run(write, what="bind to digest")

    def unplan_digest(self, island_ids: Sequence[int]) -> None:
        """The channel refused their digest for good: these islands (not announced yet) are
        no longer planned into it, before each is announced on its own (an attempt tried
        again then never looks for the digest)."""

        def write(conn: Connection) -> None:
            conn.execute(
                update(Island)
                .where(Island.id.in_(island_ids), Island.chat_thread.is_(None))
                .values(chat_digest=False, digest_of=None)
            )

        self.db.run(write, what="unplan digest")

    def open_digest(self, channel: str, *, since: datetime, size: int) -> tuple[str, int] | None:
        """The channel's newest digest that was started after ``since`` and shows fewer than
        ``size`` islands, if any: (the ts of its message, how many it shows)."""

        def read(conn: Connection) -> tuple[str, int] | None:
            row = conn.execute(
                select(Island.chat_thread, func.count(), func.min(Island.created_at))
                .where(
                    Island.chat_channel == channel,
                    Island.chat_digest.is_(True),
                    Island.chat_thread.is_not(None),  # not those only bound for a digest
                )
                .group_by(Island.chat_thread)
                .order_by(Island.chat_thread.desc())
                .limit(1)
            ).first()
            if row is None or row[1] >= size:
                return None
            started = row[2] if row[2].tzinfo else row[2].replace(tzinfo=UTC)
            if started < since:
                return None
            return str(row[0]), int(row[1])

        return self.db.run(read, what="open digest", read_only=True)

    def started_since(self, channel: str, since: datetime) -> int:
        """How many islands were started from ``channel`` since then."""

        def read(conn: Connection) -> int:
            return int(
                conn.execute(
                    select(func.count()).where(
                        Island.chat_channel == channel, Island.created_at >= since
                    )
                ).scalar_one()
            )

        return self.db.run(read, what="recent starts", read_only=True)

    def announcement_id(self, island_id: int) -> int | None:
        """The outbox id of the island's announcement (its root message's key), while kept."""

        def read(conn: Connection) -> int | None:
            found = conn.execute(
                select(func.min(OutboxMessage.id)).where(
                    OutboxMessage.island_id == island_id, OutboxMessage.kind == "announce"
                )
            ).scalar()
            return None if found is None else int(found)

        return self.db.run(read, what="announcement id", read_only=True)

    def in_digest(self, channel: str, thread: str) -> list[IslandRecord]:
        """The islands a digest shows, lowest id first."""

        def read(conn: Connection) -> list[IslandRecord]:
            rows = conn.execute(
                select(*COLUMNS)
                .where(Island.chat_channel == channel, Island.chat_thread == thread)
                .order_by(Island.id)
            ).all()
            return [island_record(r) for r in rows]

        return self.db.run(read, what="digest islands", read_only=True)
