"""Handing out island ids and host-port blocks, safely under any concurrency.

One transaction per start takes, in this order:

1. the owner's ``users`` row (an upsert, which locks it): concurrent starts by one user queue here,
   so the quota check below cannot be slipped past;
2. the request key: a key seen before returns that island instead of a new one;
3. the quota: live islands of the owner (2 and 3 are one query);
4. the lowest free port block, locked with ``FOR UPDATE SKIP LOCKED`` on MySQL so concurrent
   starts take different blocks without waiting on each other (SQLite serialises writers with
   ``BEGIN IMMEDIATE`` instead);
5. a new ``islands`` row, whose auto-increment id is never reused, and the block marked held.

Any refusal rolls the transaction back, so nothing is half-written; it is then audited on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import (
    Conflict,
    NotFound,
    PortsExhausted,
    QuotaExceeded,
    Refusal,
    UserError,
)
from bot.domain.lifecycle_rules import Notice
from bot.domain.naming import pod_name
from bot.domain.port_blocks import BlockLayout, BlockRow, exclusion_reasons, plan_layout
from bot.domain.records import (
    SYSTEM_ACTOR,
    Allocation,
    Audit,
    ExclusionConflict,
    Outcome,
    PortUsage,
    StartRequest,
    WorkTicket,
)
from bot.domain.states import FINISHED_STATES, LIVE_VALUES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra import metrics
from bot.infra.storage import audit, intake, outbox
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Base, ExcludedPort, Island, PortBlock, PortLayoutRow, User

log = logging.getLogger(__name__)

LAYOUT_ROW_ID = 1

# A start runs these on every call: built once, executed with their parameters (building and
# keying a statement per call cost more Python time than the database took to answer it).
_users = Base.metadata.tables[User.__tablename__]
_islands = Base.metadata.tables[Island.__tablename__]
_blocks = Base.metadata.tables[PortBlock.__tablename__]
_mysql_upsert = mysql_insert(_users)
_sqlite_upsert = sqlite_insert(_users)
_UPSERT_USER = {  # the upsert locks the owner's row: their concurrent starts queue here
    "mysql": _mysql_upsert.on_duplicate_key_update(
        display_name=_mysql_upsert.inserted.display_name,
        last_seen_at=_mysql_upsert.inserted.last_seen_at,
    ),
    "sqlite": _sqlite_upsert.on_conflict_do_update(
        index_elements=[_users.c.id],
        set_={
            "display_name": _sqlite_upsert.excluded.display_name,
            "last_seen_at": _sqlite_upsert.excluded.last_seen_at,
        },
    ),
}
_LOWEST_FREE_BLOCK = (
    select(_blocks.c.first_port)
    .where(
        _blocks.c.island_id.is_(None),
        _blocks.c.excluded_reason.is_(None),
        _blocks.c.retired.is_(False),
        _blocks.c.size == bindparam("size"),
    )
    .order_by(_blocks.c.first_port)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_BY_REQUEST_KEY = select(
    _islands.c.id,
    _islands.c.owner_id,
    _islands.c.pod_name,
    _islands.c.first_port,
    _islands.c.port_count,
    _islands.c.expires_at,
).where(_islands.c.request_key == bindparam("request_key"))
_KEY_OR_LIVE = union_all(
    _BY_REQUEST_KEY.add_columns(literal("key").label("found_by")),
    select(*_BY_REQUEST_KEY.selected_columns, literal("live").label("found_by")).where(
        _islands.c.owner_id == bindparam("owner_id"), _islands.c.state.in_(LIVE_VALUES)
    ),
)
_INSERT_ISLAND = insert(_islands)
_NAME_ISLAND = (
    update(_islands)
    .where(_islands.c.id == bindparam("b_id"))
    .values(pod_name=bindparam("b_pod_name"))
)
_TAKE_BLOCK = (
    update(_blocks)
    .where(_blocks.c.first_port == bindparam("b_first_port"), _blocks.c.island_id.is_(None))
    .values(island_id=bindparam("b_island_id"), held_since=bindparam("b_held_since"))
)


class Allocator:
    """Ids and port blocks for islands. Thread-safe; any number of processes may share a DB."""

    def __init__(
        self,
        db: Database,
        *,
        layout: BlockLayout,
        max_live_per_user: int,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.layout = layout
        self.max_live_per_user = max_live_per_user
        self.clock = clock

    # ---- starting ---------------------------------------------------------------------------

    def allocate(self, req: StartRequest, *, ticket: WorkTicket | None = None) -> Allocation:
        """Take an id and the lowest free block for ``req``; idempotent per request key.
        ``ticket``: the chat request this start carries out, done in the same transaction.

        Raises ``QuotaExceeded``, ``PortsExhausted`` or ``UserError`` (request key of another
        user); in each case nothing was written but an audit entry.
        """

        def done(conn: Connection, allocation: Allocation | None) -> Allocation | None:
            if allocation is not None and ticket is not None:
                intake.finish(conn, ticket)
            return allocation

        try:
            allocated = self.db.run(
                lambda conn: done(conn, self._allocate(conn, req)), what="allocate"
            )
        except IntegrityError:
            # Two first deliveries of one request key raced past the lookup: the loser lands
            # here after the winner committed, so the lookup now finds the winner's island.
            if req.request_key is None:
                raise
            found = self.db.run(
                lambda conn: done(conn, self._by_request_key(conn, req)), what="lookup"
            )
            if found is None:
                raise
            return found
        except UserError as exc:
            self._audit_refusal(req, exc)
            raise
        assert allocated is not None
        return allocated

    def _allocate(self, conn: Connection, req: StartRequest) -> Allocation:
        now = self.clock()
        conn.execute(
            _UPSERT_USER[conn.dialect.name],
            {
                "id": req.owner_id,
                "display_name": req.owner_name,
                "created_at": now,
                "last_seen_at": now,
            },
        )

        # One round trip: the island this request key started before, if any, and the owner's
        # live islands (enough to decide the quota and to name them if refused).
        rows = conn.execute(
            _KEY_OR_LIVE, {"request_key": req.request_key, "owner_id": req.owner_id}
        ).all()
        for row in rows:
            if row.found_by == "key":
                return self._started_before(row, req)
        live = sorted(row.id for row in rows)[: self.max_live_per_user]
        if len(live) >= self.max_live_per_user:
            metrics.ALLOCATION_FAILURES.labels(reason="quota").inc()
            raise QuotaExceeded(
                Refusal.QUOTA_EXCEEDED, limit=self.max_live_per_user, island_ids=list(live)
            )

        first_port = conn.execute(_LOWEST_FREE_BLOCK, {"size": self.layout.size}).scalar()
        if first_port is None:
            live_total = conn.execute(
                select(func.count()).select_from(Island).where(Island.state.in_(LIVE_VALUES))
            ).scalar_one()
            metrics.ALLOCATION_FAILURES.labels(reason="ports").inc()
            raise PortsExhausted(
                Refusal.PORTS_EXHAUSTED, port_range=str(self.layout.range), live_islands=live_total
            )

        expires_at = now + req.ttl
        inserted = conn.execute(
            _INSERT_ISLAND,
            {
                "pod_name": "",
                "owner_id": req.owner_id,
                "owner_name": req.owner_name,
                "branch": req.branch,
                "state": IslandState.REQUESTED.value,
                "first_port": first_port,
                "port_count": self.layout.size,
                "created_at": now,
                "expires_at": expires_at,
                "chat_channel": req.chat_channel,
                "clock_offset_s": req.clock_offset_s,
                "overrides": dict(req.overrides),
                "note": req.note,
                "request_key": req.request_key,
            },
        ).inserted_primary_key
        if inserted is None:  # pragma: no cover - every backend we support reports it
            raise AssertionError("the database did not report the new island's id")
        island_id = int(inserted[0])
        name = pod_name(owner_name=req.owner_name, branch=req.branch, island_id=island_id)
        conn.execute(_NAME_ISLAND, {"b_id": island_id, "b_pod_name": name})
        taken = conn.execute(
            _TAKE_BLOCK, {"b_first_port": first_port, "b_island_id": island_id, "b_held_since": now}
        ).rowcount
        if taken != 1:  # pragma: no cover - would mean the row lock did not hold
            raise AssertionError(f"port block {first_port} was taken under our lock")
        if req.chat_channel is not None:  # its root message goes out first, from the outbox
            outbox.add(
                conn,
                island_id,
                [(Notice.ANNOUNCE, {"reply": dict(req.reply)} if req.reply else {})],
                at=now,
            )
        audit.record(
            conn,
            Audit(
                req.owner_id,
                "start",
                island_id=island_id,
                detail={
                    "branch": req.branch,
                    "first_port": first_port,
                    "port_count": self.layout.size,
                    "request_key": req.request_key,
                },
            ),
            at=now,
        )
        return Allocation(island_id, name, first_port, self.layout.size, expires_at, True)

    def _by_request_key(self, conn: Connection, req: StartRequest) -> Allocation | None:
        row = conn.execute(_BY_REQUEST_KEY, {"request_key": req.request_key}).first()
        return None if row is None else self._started_before(row, req)

    @staticmethod
    def _started_before(row: Any, req: StartRequest) -> Allocation:  # a row of _BY_REQUEST_KEY
        if row.owner_id != req.owner_id:
            raise UserError(Refusal.REQUEST_KEY_TAKEN, request_key=str(req.request_key))
        return Allocation(
            row.id, row.pod_name, row.first_port, row.port_count, row.expires_at, False
        )

    def _audit_refusal(self, req: StartRequest, exc: UserError) -> None:
        def write(conn: Connection) -> None:
            audit.record(
                conn,
                Audit(
                    req.owner_id,
                    "start",
                    Outcome.REFUSED,
                    detail={"branch": req.branch, **exc.data(), "request_key": req.request_key},
                ),
                at=self.clock(),
            )

        self.db.run(write, what="audit refusal")

    # ---- releasing --------------------------------------------------------------------------

    def release(self, island_id: int, *, actor: str = SYSTEM_ACTOR) -> bool:
        """Free the island's block for reuse. Call only once its pod is known to be gone.

        Refused (``Conflict``) unless the island is stopped. Returns False when the block was
        already released, so calling it again is harmless.
        """
        return self.db.run(lambda conn: self._release(conn, island_id, actor), what="release")

    def _release(self, conn: Connection, island_id: int, actor: str) -> bool:
        state = conn.execute(select(Island.state).where(Island.id == island_id)).scalar()
        if state is None:
            raise NotFound(Refusal.ISLAND_NOT_FOUND, island_id=island_id)
        if state not in FINISHED_STATES:
            raise Conflict(Refusal.PORTS_STILL_NEEDED, island_id=island_id, state=state)
        block = conn.execute(
            select(PortBlock.first_port, PortBlock.retired)
            .where(PortBlock.island_id == island_id)
            .with_for_update()
        ).first()
        if block is None:
            return False
        now = self.clock()
        if block.retired:
            conn.execute(delete(PortBlock).where(PortBlock.first_port == block.first_port))
        else:
            conn.execute(
                update(PortBlock)
                .where(PortBlock.first_port == block.first_port)
                .values(island_id=None, held_since=None)
            )
        conn.execute(update(Island).where(Island.id == island_id).values(ports_released_at=now))
        audit.record(
            conn,
            Audit(
                actor,
                "release_ports",
                island_id=island_id,
                detail={"first_port": block.first_port, "retired": block.retired},
            ),
            at=now,
        )
        if block.retired:
            self._sync(conn, now)  # the freed ports may now complete the current layout
        return True

    # ---- layout and exclusions ----------------------------------------------------------------

    def sync_layout(self) -> list[int]:
        """Make the stored blocks match the configured layout; returns the blocks still waiting
        for a held block of an earlier layout to be released. Safe to run from every process."""
        return self.db.run(lambda conn: self._sync(conn, self.clock()), what="sync layout")

    def _lock_layout(self, conn: Connection) -> None:
        conn.execute(
            select(PortLayoutRow.id).where(PortLayoutRow.id == LAYOUT_ROW_ID).with_for_update()
        ).scalar_one()

    def _sync(self, conn: Connection, now: datetime) -> list[int]:
        self._lock_layout(conn)
        rows = conn.execute(
            select(PortBlock.first_port, PortBlock.size, PortBlock.island_id, PortBlock.retired)
        ).all()
        plan = plan_layout(
            (BlockRow(r.first_port, r.size, r.island_id is not None, r.retired) for r in rows),
            self.layout,
        )
        if plan.delete:
            conn.execute(delete(PortBlock).where(PortBlock.first_port.in_(plan.delete)))
        if plan.retire:
            conn.execute(
                update(PortBlock).where(PortBlock.first_port.in_(plan.retire)).values(retired=True)
            )
        if plan.unretire:
            conn.execute(
                update(PortBlock)
                .where(PortBlock.first_port.in_(plan.unretire))
                .values(retired=False)
            )
        if plan.create:
            excluded = self._excluded(conn)
            reasons = exclusion_reasons(((p, self.layout.size) for p in plan.create), excluded)
            conn.execute(
                insert(PortBlock),
                [
                    {
                        "first_port": p,
                        "size": self.layout.size,
                        "island_id": None,
                        "held_since": None,
                        "excluded_reason": reasons[p],
                        "retired": False,
                    }
                    for p in plan.create
                ],
            )
        conn.execute(
            update(PortLayoutRow)
            .where(PortLayoutRow.id == LAYOUT_ROW_ID)
            .values(
                range_first=self.layout.range.first,
                range_last=self.layout.range.last,
                block_size=self.layout.size,
                synced_at=now,
            )
        )
        if not plan.is_empty:
            log.info(
                "port layout %s/%d: +%d -%d blocks, %d retired, %d waiting",
                self.layout.range,
                self.layout.size,
                len(plan.create),
                len(plan.delete),
                len(plan.retire),
                len(plan.waiting),
            )
        return list(plan.waiting)

    @staticmethod
    def _excluded(conn: Connection) -> dict[int, str]:
        return {
            r.port: r.reason for r in conn.execute(select(ExcludedPort.port, ExcludedPort.reason))
        }

    def set_excluded_ports(self, excluded: Mapping[int, str]) -> list[ExclusionConflict]:
        """Replace the set of ports used by something else (``{port: what uses it}``).

        Free blocks containing such a port are no longer handed out; returns the live islands
        whose held block now contains one (they keep it; the caller should warn someone).
        """
        wanted = {int(p): str(r)[:200] for p, r in excluded.items()}
        return self.db.run(lambda conn: self._set_excluded(conn, wanted), what="exclusions")

    def _set_excluded(self, conn: Connection, wanted: dict[int, str]) -> list[ExclusionConflict]:
        self._lock_layout(conn)
        now = self.clock()
        current = self._excluded(conn)
        gone = [p for p in current if p not in wanted]
        if gone:
            conn.execute(delete(ExcludedPort).where(ExcludedPort.port.in_(gone)))
        for port, reason in wanted.items():
            if port not in current:
                conn.execute(insert(ExcludedPort).values(port=port, reason=reason, since=now))
            elif current[port] != reason:
                conn.execute(
                    update(ExcludedPort).where(ExcludedPort.port == port).values(reason=reason)
                )
        blocks = conn.execute(
            select(
                PortBlock.first_port, PortBlock.size, PortBlock.island_id, PortBlock.excluded_reason
            )
        ).all()
        reasons = exclusion_reasons(((b.first_port, b.size) for b in blocks), wanted)
        conflicts = []
        for b in blocks:
            new = reasons[b.first_port]
            if new != b.excluded_reason:
                conn.execute(
                    update(PortBlock)
                    .where(PortBlock.first_port == b.first_port)
                    .values(excluded_reason=new)
                )
            if new is not None and b.island_id is not None:
                conflicts.append(ExclusionConflict(b.island_id, b.first_port, new))
        return conflicts

    # ---- reading ----------------------------------------------------------------------------

    def usage(self) -> PortUsage:
        """How many blocks exist, are held, are excluded (and not held) and are free."""

        def read(conn: Connection) -> PortUsage:
            unheld_excluded = case(
                (and_(PortBlock.island_id.is_(None), PortBlock.excluded_reason.is_not(None)), 1),
                else_=0,
            )
            total, held, excluded = conn.execute(
                select(
                    func.count(),
                    func.count(PortBlock.island_id),
                    func.coalesce(func.sum(unheld_excluded), 0),
                ).select_from(PortBlock)
            ).one()
            return PortUsage(total, held, int(excluded), total - held - int(excluded))

        return self.db.run(read, what="usage", read_only=True)
