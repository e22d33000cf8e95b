"""Clock requests in the database: asked, decided, expired, applied or failed, each change of
state audited; an applied one moves the island's recorded offset and announces it, in the same
transaction. The rules (who may, when, how far) are the use case's: it decides on the locked
rows it is shown."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bot.domain.errors import Conflict, NotFound, Refusal
from bot.domain.lifecycle_rules import Notice
from bot.domain.records import (
    SYSTEM_ACTOR,
    Audit,
    ClockAsk,
    ClockRecord,
    IslandRecord,
    NoticeSpec,
    WorkTicket,
)
from bot.domain.records import Outcome as AuditOutcome
from bot.domain.states import IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage import audit, intake, outbox
from bot.infra.storage.database import Database
from bot.infra.storage.islands import read_island
from bot.infra.storage.tables import Base, ClockRequest, Island

PENDING = "pending"
APPLYING = "applying"
_TABLE = Base.metadata.tables[ClockRequest.__tablename__]
COLUMNS = tuple(_TABLE.c[f.name] for f in fields(ClockRecord))


def record_ask(
    conn: Connection, island_id: int, ask: ClockAsk, now: datetime, **detail: Any
) -> int:
    """Inside the caller's transaction: the clock change asked for (being applied when it is
    ``immediate``, else waiting for a decision) and its audit entry; returns its id."""
    inserted = conn.execute(
        insert(ClockRequest).values(
            island_id=island_id,
            requested_by=ask.requested_by,
            requested_at=now,
            from_offset_s=ask.from_offset_s,
            to_offset_s=ask.to_offset_s,
            kind=ask.kind,
            target_at=ask.target_at,
            state=APPLYING if ask.immediate else PENDING,
            decided_by=ask.requested_by if ask.immediate else None,
            decided_at=now if ask.immediate else None,
            expires_at=ask.expires_at,
            chat_channel=ask.chat_channel,
        )
    ).inserted_primary_key
    assert inserted is not None
    request_id = int(inserted[0])
    audit.record(
        conn,
        Audit(
            ask.requested_by,
            "clock:shift" if ask.immediate else "clock:request",
            island_id=island_id,
            detail={
                "from": ask.from_offset_s,
                "to": ask.to_offset_s,
                "request": request_id,
                **detail,
            },
        ),
        at=now,
    )
    return request_id


def clock_record(row: Any) -> ClockRecord:
    return ClockRecord(**dict(row._mapping))


def _load(conn: Connection, request_id: int, *, lock: bool = False) -> ClockRecord:
    query = select(*COLUMNS).where(ClockRequest.id == request_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(Refusal.CLOCK_REQUEST_NOT_FOUND, request_id=request_id)
    return clock_record(row)


class ClockRequests:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    # ---- reading ------------------------------------------------------------------------------

    def get(self, request_id: int) -> ClockRecord:
        return self.db.run(
            lambda conn: _load(conn, request_id), what="clock request", read_only=True
        )

    def island_and_last_applied(self, island_id: int) -> tuple[IslandRecord, ClockRecord | None]:
        """The island, and its last applied change (who set its clock, when)."""

        def read(conn: Connection) -> tuple[IslandRecord, ClockRecord | None]:
            island = read_island(conn, island_id)
            last = conn.execute(
                select(*COLUMNS)
                .where(ClockRequest.island_id == island_id, ClockRequest.state == "applied")
                .order_by(ClockRequest.id.desc())
                .limit(1)
            ).first()
            return island, None if last is None else clock_record(last)

        return self.db.run(read, what="show clock", read_only=True)

    def history(self, island_id: int, limit: int = 50) -> list[ClockRecord]:
        """The island's requests, newest first (NotFound when there is no such island)."""

        def read(conn: Connection) -> list[ClockRecord]:
            read_island(conn, island_id)
            rows = conn.execute(
                select(*COLUMNS)
                .where(ClockRequest.island_id == island_id)
                .order_by(ClockRequest.id.desc())
                .limit(limit)
            ).all()
            return [clock_record(r) for r in rows]

        return self.db.run(read, what="clock history", read_only=True)

    def applying(self, *, older_than: timedelta) -> list[ClockRecord]:
        """Requests decided (approved, or the owner's) more than ``older_than`` ago and still
        being applied: their applier may have died."""

        def read(conn: Connection) -> list[ClockRecord]:
            cutoff = self.clock() - older_than
            rows = conn.execute(
                select(*COLUMNS).where(
                    ClockRequest.state == APPLYING, ClockRequest.decided_at < cutoff
                )
            ).all()
            return [clock_record(r) for r in rows]

        return self.db.run(read, what="clock requests being applied", read_only=True)

    def with_island(self, request: ClockRecord) -> tuple[ClockRecord, IslandRecord]:
        """The request as it stands now (``request`` may be a stale copy) and its island: what
        an applier holding the island's clock lease works from. A request no longer
        ``applying`` was settled meanwhile and is not to be applied again; one still
        ``applying`` comes with the island's offset from before it was applied."""

        def read(conn: Connection) -> tuple[ClockRecord, IslandRecord]:
            # the island first: ``applied`` moves the offset and settles the request in one
            # transaction, so a request still applying when read second was not yet applied
            # when the island was read (also under READ COMMITTED, where each read is fresh)
            island = read_island(conn, request.island_id)
            return _load(conn, request.id), island

        return self.db.run(read, what="clock request to apply", read_only=True)

    # ---- asking and deciding ------------------------------------------------------------------

    def ask(
        self,
        island_id: int,
        decide: Callable[[IslandRecord], ClockAsk],
        *,
        ticket: WorkTicket | None = None,
    ) -> tuple[ClockRecord, tuple[ClockRecord, ...]]:
        """Lock the island, let ``decide`` say what is asked (or raise to refuse), supersede
        the island's pending request, record the new one; a request that waits for a decision
        is announced in the channel from the outbox. ``ticket``: the chat request this
        carries out, done in the same transaction. Returns it and those superseded."""

        def write(conn: Connection) -> tuple[ClockRecord, tuple[ClockRecord, ...]]:
            ask = decide(read_island(conn, island_id, lock=True))
            now = self.clock()
            superseded = self._supersede(conn, island_id, by=ask.requested_by, now=now)
            request_id = record_ask(conn, island_id, ask, now)
            if not ask.immediate:
                outbox.add(
                    conn, island_id, [(Notice.CLOCK_REQUESTED, {"request": request_id})], at=now
                )
            if ticket is not None:
                intake.finish(conn, ticket)
            return _load(conn, request_id), superseded

        return self.db.run(write, what="clock shift")

    @staticmethod
    def _supersede(
        conn: Connection, island_id: int, *, by: str, now: datetime
    ) -> tuple[ClockRecord, ...]:
        rows = conn.execute(
            select(*COLUMNS).where(
                ClockRequest.island_id == island_id, ClockRequest.state == PENDING
            )
        ).all()
        if not rows:
            return ()
        conn.execute(
            update(ClockRequest)
            .where(ClockRequest.id.in_([r.id for r in rows]))
            .values(state="superseded", decided_by=by, decided_at=now)
        )
        return tuple(
            replace(clock_record(r), state="superseded", decided_by=by, decided_at=now)
            for r in rows
        )

    def decide(
        self,
        request_id: int,
        *,
        by: str,
        approve: bool,
        check: Callable[[ClockRecord, IslandRecord], None],
        ticket: WorkTicket | None = None,
    ) -> ClockRecord:
        """Lock the request and its island; ``check`` raises to refuse; else the request is
        being applied (``approve``) or rejected."""

        def write(conn: Connection) -> ClockRecord:
            request = _load(conn, request_id, lock=True)
            check(request, read_island(conn, request.island_id, lock=True))
            now = self.clock()
            conn.execute(
                update(ClockRequest)
                .where(ClockRequest.id == request_id)
                .values(state=APPLYING if approve else "rejected", decided_by=by, decided_at=now)
            )
            audit.record(
                conn,
                Audit(
                    by,
                    "clock:approve" if approve else "clock:reject",
                    island_id=request.island_id,
                    detail={"request": request_id},
                ),
                at=now,
            )
            if ticket is not None:
                intake.finish(conn, ticket)
            return _load(conn, request_id)

        return self.db.run(write, what="clock decision")

    def expire(self) -> list[ClockRecord]:
        """Pending requests past their time become expired; returns them (their messages are
        to be updated)."""
        now = self.clock()

        def write(conn: Connection) -> list[ClockRecord]:
            rows = conn.execute(
                select(*COLUMNS).where(
                    ClockRequest.state == PENDING, ClockRequest.expires_at <= now
                )
            ).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            conn.execute(
                update(ClockRequest)
                .where(ClockRequest.id.in_(ids), ClockRequest.state == PENDING)
                .values(state="expired", decided_at=now)
            )
            for r in rows:
                audit.record(
                    conn,
                    Audit(
                        SYSTEM_ACTOR,
                        "clock:expire",
                        island_id=r.island_id,
                        detail={"request": r.id},
                    ),
                    at=now,
                )
            return [
                clock_record(r)
                for r in conn.execute(select(*COLUMNS).where(ClockRequest.id.in_(ids))).all()
            ]

        return self.db.run(write, what="expire clock requests")

    def attach_message(self, request_id: int, channel: str, ts: str) -> None:
        self.db.run(
            lambda conn: conn.execute(
                update(ClockRequest)
                .where(ClockRequest.id == request_id)
                .values(chat_channel=channel, chat_ts=ts)
            ),
            what="clock request message",
        )

    # ---- the result ---------------------------------------------------------------------------

    def applied(
        self,
        request: ClockRecord,
        *,
        actor: str,
        from_s: int,
        to_s: int,
        notice: NoticeSpec,
        state: IslandState,
    ) -> tuple[ClockRecord, bool]:
        """The island's clock moved: its recorded offset, the request, the notice, the audit;
        only while the request is still being applied (``request`` may be a stale copy) and
        the island still in ``state`` (a pod created meanwhile started on the old offset: then
        ``Conflict``, and nothing is written). Returns the request as it now stands and
        whether this call recorded the result: False when another applier settled it first
        (then nothing is written, announced or audited)."""

        def write(conn: Connection) -> tuple[ClockRecord, bool]:
            now = self.clock()
            if not _settle(
                conn,
                request.id,
                state="applied",
                applied_at=now,
                from_offset_s=from_s,
                to_offset_s=to_s,
            ):
                return _load(conn, request.id), False
            moved = conn.execute(
                update(Island)
                .where(Island.id == request.island_id, Island.state == state.value)
                .values(clock_offset_s=to_s)
            ).rowcount
            if not moved:  # raised: the request's update above is rolled back with it
                current = read_island(conn, request.island_id)
                raise Conflict(
                    Refusal.CLOCK_NOT_NOW, island_id=current.id, state=current.state.value
                )
            outbox.add(conn, request.island_id, [notice], at=now)
            audit.record(
                conn,
                Audit(
                    actor,
                    "clock:applied",
                    island_id=request.island_id,
                    detail={"request": request.id, "to": to_s},
                ),
                at=now,
            )
            return _load(conn, request.id), True

        return self.db.run(write, what="clock result")

    def failed(
        self,
        request: ClockRecord,
        *,
        actor: str,
        error: str,
        why: Mapping[str, Any],
        notice: NoticeSpec,
        also: Sequence[NoticeSpec] = (),
    ) -> tuple[ClockRecord, bool]:
        """The change could not be made: the offset stays; the request says why (``error``,
        worded), the audit entry keeps why as data (``why``: a code and its details). Only while
        the request is still being applied; returns it as it now stands and whether this call
        recorded the failure (False: another applier settled it first, nothing written)."""

        def write(conn: Connection) -> tuple[ClockRecord, bool]:
            now = self.clock()
            if not _settle(conn, request.id, state="failed", failure_reason=error[:1000]):
                return _load(conn, request.id), False
            outbox.add(conn, request.island_id, [notice, *also], at=now)
            audit.record(
                conn,
                Audit(
                    actor,
                    "clock:failed",
                    AuditOutcome.ERROR,
                    island_id=request.island_id,
                    detail=why,
                ),
                at=now,
            )
            return _load(conn, request.id), True

        return self.db.run(write, what="clock result")


def _settle(conn: Connection, request_id: int, **values: Any) -> bool:
    """The request's result, written only if it is still being applied (a conditional
    UPDATE: of two appliers, one wins); True when this one did."""
    settled = conn.execute(
        update(ClockRequest)
        .where(ClockRequest.id == request_id, ClockRequest.state == APPLYING)
        .values(**values)
    ).rowcount
    return bool(settled)
