"""The outbox: notices written in the same transaction as the change they announce, delivered
afterwards by the lifecycle loop's leader, one at a time, each recorded as sent the moment it
is (so once, also across restarts, and a crash loses no progress).

Every delivery attempt first *claims* its notice: a conditional update that succeeds only if
the notice is unsent, not given up and free (never claimed, or its claim expired), and only
while the caller still holds the lease it was given (``fence``), all on the database's clock.
A deposed leader can therefore deliver nothing, and two replicas never hold one notice. A
failed attempt backs off (``next_attempt_at``); a notice older than ``max_age`` is given up:
recorded as such (``given_up_at``) and counted, never silently dropped. A notice that can
never be delivered (the chat refuses it for good, or our own code fails on it) is given up at
once, ``delivered_as`` saying why (``refused``, ``failed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, case, delete, func, insert, or_, select, update

from bot.domain.lifecycle_rules import Notice
from bot.domain.records import NoticeSpec, PendingNotice
from bot.domain.states import IslandState
from bot.infra.storage import heartbeat
from bot.infra.storage.database import Database, database_now
from bot.infra.storage.tables import Base, Delivery, Island, OutboxMessage

_INSERT = insert(Base.metadata.tables[OutboxMessage.__tablename__])
Fence = Callable[[Connection], None]  # raises when the caller may no longer deliver


def add(conn: Connection, island_id: int, notices: Iterable[NoticeSpec], *, at: datetime) -> None:
    """Queue ``notices`` for the island inside the caller's transaction, in order."""
    for kind, detail in notices:
        conn.execute(
            _INSERT,
            {
                "island_id": island_id,
                "kind": kind.value,
                "detail": _jsonable(detail),
                "created_at": at,
            },
        )


def _jsonable(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in detail.items()}


def _revive(detail: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(detail)
    if isinstance(out.get("expires_at"), str):
        out["expires_at"] = datetime.fromisoformat(out["expires_at"])
    return out


def _pending(now: datetime) -> Select[Any]:
    """The undelivered notices that may go now as far as their island's order goes: not one
    backing off, nor any later one of its island (which waits behind it, never overtakes it).
    The islands held up (their first notice backing off) are found in one pass over the
    undelivered notices (the (sent_at, id) index) and left out by an outer join: no
    per-row subquery, whatever the number of notices stuck."""
    held = (
        select(OutboxMessage.island_id, func.min(OutboxMessage.id).label("from_id"))
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.given_up_at.is_(None),
            OutboxMessage.next_attempt_at > now,
        )
        .group_by(OutboxMessage.island_id)
        .subquery("held")
    )
    return (
        select(
            OutboxMessage.id,
            OutboxMessage.island_id,
            OutboxMessage.kind,
            OutboxMessage.detail,
            OutboxMessage.attempts,
            OutboxMessage.created_at,
            OutboxMessage.next_attempt_at,
            case((_dead(now), None), else_=OutboxMessage.claim_until).label("claim_until"),
            Island.owner_id,
            Island.branch,
            Island.first_port,
            Island.chat_channel,
            Island.chat_thread,
            Island.state,
            Island.clock_offset_s,
            Island.chat_digest,
            Island.digest_of,
        )
        .select_from(OutboxMessage)
        .join(Island, Island.id == OutboxMessage.island_id)
        .outerjoin(held, held.c.island_id == OutboxMessage.island_id)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.given_up_at.is_(None),
            or_(held.c.from_id.is_(None), OutboxMessage.id < held.c.from_id),
        )
        .order_by(OutboxMessage.id)
    )


def _dead(now: datetime) -> Any:
    """SQL: the notice's claim was made by a process that has died (its heartbeat ended)."""
    return OutboxMessage.worker.is_not(None) & ~heartbeat.alive(OutboxMessage.worker, now)


def _claimable(now: datetime) -> tuple[Any, ...]:
    """A notice one may claim now: unsent, not given up, free (never claimed, its claim
    expired, or its claimer's process dead), due."""
    return (
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.given_up_at.is_(None),
        or_(OutboxMessage.claimed_by.is_(None), OutboxMessage.claim_until < now, _dead(now)),
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
    )


def _sent(conn: Connection, delivered_as: str) -> dict[str, Any]:
    return {
        "sent_at": database_now(conn),
        "claimed_by": None,
        "claim_until": None,
        "delivered_as": delivered_as,
    }


class Outbox:
    def __init__(self, db: Database, *, worker: str | None = None) -> None:
        """``worker``: this process's heartbeat name; its claims die with it (without one, a
        claim lives until its ttl is over)."""
        self.db = db
        self.worker = worker

    def pending(self, *, limit: int) -> tuple[datetime, list[PendingNotice]]:
        """The database's time now, and the undelivered notices that are due, oldest first:
        not those backing off, nor the later ones of their islands, which wait behind them
        (so notices stuck for a while never fill ``limit`` and keep newer ones out). Whether
        each is claimed by another delivery is the caller's to judge against that time."""

        def read(conn: Connection) -> tuple[datetime, list[PendingNotice]]:
            now = database_now(conn)
            rows = conn.execute(_pending(now).limit(limit)).all()
            return now, [
                PendingNotice(
                    r.id,
                    r.island_id,
                    Notice(r.kind),
                    _revive(r.detail),
                    r.attempts,
                    r.owner_id,
                    r.branch,
                    r.first_port,
                    r.chat_channel,
                    r.chat_thread,
                    IslandState(r.state),
                    r.clock_offset_s,
                    created_at=r.created_at,
                    chat_digest=bool(r.chat_digest),
                    digest_of=r.digest_of,
                    next_attempt_at=r.next_attempt_at,
                    claim_until=r.claim_until,
                )
                for r in rows
            ]

        return self.db.run(read, what="outbox", read_only=True)

    def claim_many(
        self, notice_ids: Sequence[int], *, by: str, ttl: timedelta, fence: Fence | None
    ) -> list[int]:
        """Take these notices for one delivery attempt each (counted), those that are free
        and due, if the caller may still deliver (``fence``), in one transaction: the ids
        taken, in the order given (someone else has the others, or they are done)."""

        def write(conn: Connection) -> list[int]:
            if fence is not None:
                fence(conn)
            now = database_now(conn)
            free = set(
                conn.execute(
                    select(OutboxMessage.id)
                    .where(
                        OutboxMessage.id.in_(notice_ids),
                        *_claimable(now),
                    )
                    .with_for_update()
                ).scalars()
            )
            if free:
                self._take(conn, free, by=by, until=now + ttl)
            return [i for i in notice_ids if i in free]

        return self.db.run(write, what="claim notices")

    def _take(
        self, conn: Connection, notice_ids: Iterable[int], *, by: str, until: datetime
    ) -> None:
        """Claim these free notices for one attempt each (counted), inside the caller's
        transaction."""
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(notice_ids)))
            .values(
                claimed_by=by,
                claim_until=until,
                worker=self.worker,
                attempts=OutboxMessage.attempts + 1,
            )
        )

    def claim_digest(
        self, notice_ids: Sequence[int], *, by: str, ttl: timedelta, fence: Fence | None
    ) -> tuple[list[int], int | None]:
        """Take these announcements for a new digest, as ``claim_many`` does, but only those
        never tried before whose islands are not announced nor planned into a digest yet, and
        plan their islands into it in the same transaction (``islands.digest_of``: the lowest
        of them, whose id keys the digest). Returns the ids taken, in the order given, and that
        island's id (None when none was taken). An announcement tried before may be in the
        chat on its own: it is never planned into a digest."""

        def write(conn: Connection) -> tuple[list[int], int | None]:
            if fence is not None:
                fence(conn)
            now = database_now(conn)
            free = dict(
                conn.execute(
                    select(OutboxMessage.id, OutboxMessage.island_id)
                    .join(Island, Island.id == OutboxMessage.island_id)
                    .where(
                        OutboxMessage.id.in_(notice_ids),
                        *_claimable(now),
                        OutboxMessage.attempts == 0,
                        Island.chat_thread.is_(None),
                        Island.digest_of.is_(None),
                    )
                    .with_for_update()
                ).all()
            )
            if not free:
                return [], None
            leader = min(free.values())
            self._take(conn, free, by=by, until=now + ttl)
            conn.execute(
                update(Island)
                .where(Island.id.in_(free.values()))
                .values(chat_digest=True, digest_of=leader)
            )
            return [i for i in notice_ids if i in free], leader

        return self.db.run(write, what="claim a digest's notices")

    def sent_many(self, notice_ids: Sequence[int], *, by: str, delivered_as: str) -> int:
        """Record these notices as delivered (``delivered_as``: posted, shown, superseded),
        in one transaction; how many were still ours (a claim lost meanwhile is not)."""

        def write(conn: Connection) -> int:
            return int(
                conn.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(notice_ids), OutboxMessage.claimed_by == by)
                    .values(_sent(conn, delivered_as))
                ).rowcount
            )

        return self.db.run(write, what="notices sent")

    def failed(
        self,
        notice_id: int,
        *,
        by: str,
        error: str,
        wait: timedelta,
        max_age: timedelta,
    ) -> bool:
        """An attempt failed: try again after ``wait``, or give the notice up when it is older
        than ``max_age``. Returns True when it was given up."""

        def write(conn: Connection) -> bool:
            now = database_now(conn)
            created = conn.execute(
                select(OutboxMessage.created_at).where(
                    OutboxMessage.id == notice_id, OutboxMessage.claimed_by == by
                )
            ).scalar()
            if created is None:
                return False  # the claim was lost: the new holder decides
            give_up = now - created > max_age
            still_ours = conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == notice_id, OutboxMessage.claimed_by == by)
                .values(
                    last_error=error[:500],
                    next_attempt_at=now + wait,
                    claimed_by=None,
                    claim_until=None,
                    worker=None,
                    given_up_at=now if give_up else None,
                )
            ).rowcount
            return give_up and bool(still_ours)  # taken over since it was read: theirs now

        return self.db.run(write, what="notice failed")

    def refused(self, notice_id: int, *, by: str, outcome: str, error: str) -> bool:
        """Record the notice as never to be delivered, at once (not backed off, so the
        island's later notices go on): ``outcome`` says why, ``refused`` (the chat refuses it
        for good) or ``failed`` (an error of our own); ``error`` is kept as its last error.
        False when the claim had been lost meanwhile (the new holder decides)."""

        def write(conn: Connection) -> bool:
            done = conn.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == notice_id,
                    OutboxMessage.claimed_by == by,
                    OutboxMessage.sent_at.is_(None),
                )
                .values(
                    given_up_at=database_now(conn),
                    delivered_as=outcome,
                    last_error=error[:500],
                    claimed_by=None,
                    claim_until=None,
                )
            ).rowcount
            return bool(done)

        return self.db.run(write, what="notice refused")

    def unsent(self) -> int:
        """Notices written, neither delivered nor given up."""

        def read(conn: Connection) -> int:
            query = select(func.count()).select_from(OutboxMessage)
            query = query.where(
                OutboxMessage.sent_at.is_(None), OutboxMessage.given_up_at.is_(None)
            )
            return int(conn.execute(query).scalar_one())

        return self.db.run(read, what="unsent notices", read_only=True)

    def forget(self, *, keep: timedelta, keep_deliveries: timedelta) -> dict[str, int]:
        """Housekeeping, by the database's clock: notices sent or given up longer than
        ``keep`` ago (a given-up notice was logged and counted when it was given up), chat
        requests done longer than ``keep_deliveries`` ago, and the heartbeats of processes
        dead that long."""

        def write(conn: Connection) -> dict[str, int]:
            now = database_now(conn)
            before = now - keep
            notices = conn.execute(
                delete(OutboxMessage).where(
                    or_(OutboxMessage.sent_at < before, OutboxMessage.given_up_at < before)
                )
            ).rowcount
            keys = conn.execute(
                delete(Delivery).where(
                    Delivery.seen_at < now - keep_deliveries, Delivery.state == "done"
                )
            )
            processes = heartbeat.forget_dead(conn, older_than=keep_deliveries)
            return {
                "notices": int(notices),
                "deliveries": int(keys.rowcount),
                "processes": processes,
            }

        return self.db.run(write, what="housekeeping")
