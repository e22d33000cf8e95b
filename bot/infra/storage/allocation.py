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
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
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
from bot.domain.port_blocks import BlockLayout
from bot.domain.records import (
    SYSTEM_ACTOR,
    Allocation,
    Audit,
    NoticeSpec,
    Outcome,
    StartRequest,
    WorkTicket,
)
from bot.domain.states import FINISHED_STATES, LIVE_VALUES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra import metrics
from bot.infra.storage import audit, intake, outbox, pool_claims
from bot.infra.storage.database import Database
from bot.infra.storage.port_layout import PortLayout
from bot.infra.storage.tables import Base, Island, PortBlock, User

log = logging.getLogger(__name__)

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


class Allocator(PortLayout):
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

        began = time.monotonic()
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
        if allocated.claimed:  # counted once committed (a transaction may be run again)
            metrics.POOL_CLAIMS.labels(branch=req.branch).inc()
            metrics.POOL_CLAIM_SECONDS.observe(time.monotonic() - began)
        elif allocated.miss is not None:
            metrics.POOL_MISSES.labels(branch=req.branch, why=allocated.miss.value).inc()
        return allocated

    def _allocate(self, conn: Connection, req: StartRequest) -> Allocation:
        now = self.clock()
        upsert_user(conn, req.owner_id, req.owner_name, now)

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

        miss = None
        if req.pool is not None:
            claimed = pool_claims.claim(conn, req, now=now)
            if isinstance(claimed, Allocation):
                return claimed
            miss = claimed
        expires_at = now + req.ttl
        made = new_island(
            conn,
            size=self.layout.size,
            owner_id=req.owner_id,
            owner_name=req.owner_name,
            branch=req.branch,
            now=now,
            expires_at=expires_at,
            chat_channel=req.chat_channel,
            clock_offset_s=req.clock_offset_s,
            overrides=req.overrides,
            note=req.note,
            request_key=req.request_key,
        )
        if made is None:
            live_total = conn.execute(
                select(func.count()).select_from(Island).where(Island.state.in_(LIVE_VALUES))
            ).scalar_one()
            metrics.ALLOCATION_FAILURES.labels(reason="ports").inc()
            raise PortsExhausted(
                Refusal.PORTS_EXHAUSTED, port_range=str(self.layout.range), live_islands=live_total
            )
        island_id, name, first_port = made
        if miss is not None:  # the branch has a pool that could not serve this start
            pool_claims.count(conn, req.branch, now, misses=1)
        if req.chat_channel is not None:  # its root message goes out first, from the outbox
            notices: list[NoticeSpec] = [
                (Notice.ANNOUNCE, {"reply": dict(req.reply)} if req.reply else {})
            ]
            if miss is not None:
                typical = pool_claims.typical_boot_s(conn, req.branch)
                notices.append((Notice.POOL_MISS, {"why": miss.value, "typical_s": typical}))
            outbox.add(conn, island_id, notices, at=now)
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
                    **({} if miss is None else {"pool": f"miss:{miss.value}"}),
                },
            ),
            at=now,
        )
        return Allocation(
            island_id, name, first_port, self.layout.size, expires_at, True, miss=miss
        )

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


def new_island(
    conn: Connection,
    *,
    size: int,
    owner_id: str,
    owner_name: str,
    branch: str,
    now: datetime,
    expires_at: datetime,
    chat_channel: str | None = None,
    clock_offset_s: int = 0,
    overrides: Mapping[str, str] | None = None,
    note: str | None = None,
    request_key: str | None = None,
) -> tuple[int, str, int] | None:
    """A new island row holding the lowest free block of ``size`` ports, inside the caller's
    transaction: (id, pod name, first port), or None when no block is free."""
    first_port = conn.execute(_LOWEST_FREE_BLOCK, {"size": size}).scalar()
    if first_port is None:
        return None
    inserted = conn.execute(
        _INSERT_ISLAND,
        {
            "pod_name": "",
            "owner_id": owner_id,
            "owner_name": owner_name,
            "branch": branch,
            "state": IslandState.REQUESTED.value,
            "first_port": first_port,
            "port_count": size,
            "created_at": now,
            "expires_at": expires_at,
            "chat_channel": chat_channel,
            "clock_offset_s": clock_offset_s,
            "overrides": dict(overrides or {}),
            "note": note,
            "request_key": request_key,
        },
    ).inserted_primary_key
    if inserted is None:  # pragma: no cover - every backend we support reports it
        raise AssertionError("the database did not report the new island's id")
    island_id = int(inserted[0])
    name = pod_name(owner_name=owner_name, branch=branch, island_id=island_id)
    conn.execute(_NAME_ISLAND, {"b_id": island_id, "b_pod_name": name})
    taken = conn.execute(
        _TAKE_BLOCK, {"b_first_port": first_port, "b_island_id": island_id, "b_held_since": now}
    ).rowcount
    if taken != 1:  # pragma: no cover - would mean the row lock did not hold
        raise AssertionError(f"port block {first_port} was taken under our lock")
    return island_id, name, first_port


def upsert_user(conn: Connection, user_id: str, name: str, now: datetime) -> None:
    """The user's row, made or renamed: it also locks the row until the transaction ends."""
    conn.execute(
        _UPSERT_USER[conn.dialect.name],
        {"id": user_id, "display_name": name, "created_at": now, "last_seen_at": now},
    )
