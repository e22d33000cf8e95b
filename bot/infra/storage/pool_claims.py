"""Handing a warm island to a person, inside the start's transaction (``Allocator``).

The oldest fresh ready island of the branch's pool is locked with ``FOR UPDATE SKIP LOCKED``
(MySQL: concurrent claims take different islands without waiting on each other; SQLite's
single writer serialises them), and taken by a conditional update that only an island still
in its pool and ready matches: two claims never get one island. Freshness (max age, a refresh
CI asked for, the newest code its branch registered) is read first from the branch's
``pools`` row without a lock: a join in the locking read would lock that row for every claim.
The claim's notices (root message, "ready") and its audit entry are written with it; a claim
with a clock asked for records that change instead of "ready" (``ClockActions.apply_claim``
applies it and says "ready" then).
"""

from __future__ import annotations

import random
import statistics
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, or_, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.lifecycle_rules import Notice
from bot.domain.pool import CLAIM_CLOCK, POOL_OWNER, Miss
from bot.domain.records import Allocation, Audit, ClockAsk, NoticeSpec, StartRequest
from bot.domain.states import IslandState
from bot.infra.storage import audit, clock_requests, outbox
from bot.infra.storage.tables import Base, Island, Pool, PoolDay

_islands = Base.metadata.tables[Island.__tablename__]
_pools = Base.metadata.tables[Pool.__tablename__]
_days = Base.metadata.tables[PoolDay.__tablename__]
_FRESHNESS = select(_pools.c.size, _pools.c.refreshed_at, _pools.c.code_version).where(
    _pools.c.branch == bindparam("branch")
)
_OLDEST_FRESH = (
    select(
        _islands.c.id,
        _islands.c.pod_name,
        _islands.c.first_port,
        _islands.c.port_count,
        _islands.c.host_ip,
        _islands.c.node,
    )
    .where(
        _islands.c.owner_id == POOL_OWNER,
        _islands.c.state == IslandState.READY.value,
        _islands.c.branch == bindparam("branch"),
        _islands.c.created_at > bindparam("born_after"),
        or_(
            bindparam("code_version", type_=_islands.c.code_version.type).is_(None),
            _islands.c.code_version.is_(None),
            _islands.c.code_version == bindparam("code_version"),
        ),
    )
    .order_by(_islands.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_HAND_OVER = (
    update(_islands)
    .where(
        _islands.c.id == bindparam("b_id"),
        _islands.c.owner_id == POOL_OWNER,
        _islands.c.state == IslandState.READY.value,
    )
    .values(
        owner_id=bindparam("b_owner_id"),
        owner_name=bindparam("b_owner_name"),
        expires_at=bindparam("b_expires_at"),
        note=bindparam("b_note"),
        chat_channel=bindparam("b_chat_channel"),
        request_key=bindparam("b_request_key"),
        claimed_at=bindparam("b_claimed_at"),
        expiry_warned_at=None,
    )
)
COUNT_SHARDS = 16  # rows a day's counts are spread over
TYPICAL_OF = 20  # the last ready islands of a branch that say how long a fresh one takes


def claim(conn: Connection, req: StartRequest, *, now: datetime) -> Allocation | Miss | None:
    """Hand the oldest fresh ready island of ``req.branch``'s pool to ``req``'s owner; else
    why not (``Miss``), or None when the branch has no pool in force (an admin's size from
    chat, else the deployment's in ``req.pool``). The caller holds the owner's row (the quota
    is checked)."""
    assert req.pool is not None
    fresh = conn.execute(_FRESHNESS, {"branch": req.branch}).first()
    size = req.pool.size if fresh is None or fresh.size is None else fresh.size
    if size <= 0:
        return None
    if not req.pool.servable:
        return Miss.OPTIONS
    born_after = now - req.pool.max_age
    if fresh is not None and fresh.refreshed_at is not None:
        born_after = max(born_after, fresh.refreshed_at - timedelta(microseconds=1))
    row = conn.execute(
        _OLDEST_FRESH,
        {
            "branch": req.branch,
            "born_after": born_after,
            "code_version": None if fresh is None else fresh.code_version,
        },
    ).first()
    if row is None:
        return Miss.EMPTY
    expires_at = now + req.ttl
    taken = conn.execute(
        _HAND_OVER,
        {
            "b_id": row.id,
            "b_owner_id": req.owner_id,
            "b_owner_name": req.owner_name,
            "b_expires_at": expires_at,
            "b_note": req.note,
            "b_chat_channel": req.chat_channel,
            "b_request_key": req.request_key,
            "b_claimed_at": now,
        },
    ).rowcount
    if taken != 1:  # pragma: no cover - would mean the row lock did not hold
        raise AssertionError(f"pool island {row.id} was taken under our lock")
    request_id = None
    if req.pool.at is not None:  # its clock is set before it is said to be ready
        request_id = _clock_request(conn, row.id, req, now)
    if req.chat_channel is not None:
        notices: list[NoticeSpec] = [
            (Notice.ANNOUNCE, {"reply": dict(req.reply)} if req.reply else {})
        ]
        if request_id is None:
            notices.append((Notice.READY, _ready_detail(row)))
        outbox.add(conn, row.id, notices, at=now)
    count(conn, req.branch, now, claims=1)
    audit.record(
        conn,
        Audit(
            req.owner_id,
            "start",
            island_id=row.id,
            detail={
                "branch": req.branch,
                "first_port": row.first_port,
                "port_count": row.port_count,
                "request_key": req.request_key,
                "pool": "claimed",
            },
        ),
        at=now,
    )
    return Allocation(
        row.id,
        row.pod_name,
        row.first_port,
        row.port_count,
        expires_at,
        True,
        claimed=True,
        clock_request=request_id,
    )


def _ready_detail(row: Any) -> dict[str, Any]:
    return {"host": row.host_ip, "node": row.node, "warm": True}


def _clock_request(conn: Connection, island_id: int, req: StartRequest, now: datetime) -> int:
    """The claim's clock change, recorded as being applied (by its owner, at once)."""
    assert req.pool is not None and req.pool.at is not None
    ask = ClockAsk(
        requested_by=req.owner_id,
        from_offset_s=0,
        to_offset_s=round((req.pool.at - now).total_seconds()),
        kind=CLAIM_CLOCK,
        target_at=req.pool.at,
        immediate=True,
        expires_at=now + timedelta(hours=1),
        chat_channel=req.chat_channel,
    )
    return clock_requests.record_ask(conn, island_id, ask, now, claim=True)


def count(
    conn: Connection, branch: str, now: datetime, *, claims: int = 0, misses: int = 0
) -> None:
    """Add to the branch's claims and misses of the day (UTC), in one of its shards."""
    conn.execute(
        _COUNT[conn.dialect.name],
        {
            "branch": branch,
            "day": now.strftime("%Y-%m-%d"),
            "shard": random.randrange(COUNT_SHARDS),  # noqa: S311 - spreading locks, not secrets
            "claims": claims,
            "misses": misses,
        },
    )


def _count_statements() -> dict[str, Executable]:
    """``count``'s upsert, one per dialect, built once (every start runs one: building it
    anew each time was a third of a claim's time)."""
    values: dict[str, Any] = {
        c: bindparam(c) for c in ("branch", "day", "shard", "claims", "misses")
    }
    up = mysql_insert(_days).values(values)
    lite = sqlite_insert(_days).values(values)
    return {
        "mysql": up.on_duplicate_key_update(
            claims=_days.c.claims + up.inserted.claims,
            misses=_days.c.misses + up.inserted.misses,
        ),
        "sqlite": lite.on_conflict_do_update(
            index_elements=[_days.c.branch, _days.c.day, _days.c.shard],
            set_={
                "claims": _days.c.claims + lite.excluded.claims,
                "misses": _days.c.misses + lite.excluded.misses,
            },
        ),
    }


_COUNT = _count_statements()


def typical_boot_s(conn: Connection, branch: str) -> int | None:
    """How long the branch's last fresh islands took from their pod's create to ready (the
    median, whole seconds), or None when none is known yet."""
    rows = conn.execute(
        select(_islands.c.pod_requested_at, _islands.c.ready_at)
        .where(
            _islands.c.branch == branch,
            _islands.c.ready_at.is_not(None),
            _islands.c.pod_requested_at.is_not(None),
        )
        .order_by(_islands.c.id.desc())
        .limit(TYPICAL_OF)
    ).all()
    took = [(r.ready_at - r.pod_requested_at).total_seconds() for r in rows]
    took = [t for t in took if t >= 0]
    return round(statistics.median(took)) if took else None
