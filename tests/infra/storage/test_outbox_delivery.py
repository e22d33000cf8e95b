"""The outbox in storage (SQLite and MariaDB): what ``pending`` reads, and a notice recorded as
never to be delivered (issue 21, defect 7)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.domain.lifecycle_rules import Notice
from bot.infra.storage import outbox
from bot.infra.storage.database import Database
from bot.infra.storage.outbox import Outbox
from bot.infra.storage.tables import OutboxMessage
from tests.infra.storage.test_allocation import T0, FakeClock
from tests.infra.storage.test_digests import start


def claim(box: Outbox, notice_id: int, **kwargs: Any) -> bool:
    """One notice claimed (``claim_many`` of one)."""
    return box.claim_many([notice_id], **kwargs) == [notice_id]


def sent(box: Outbox, notice_id: int, *, by: str, delivered_as: str = "posted") -> bool:
    """One notice recorded as sent (``sent_many`` of one); False when the claim was lost."""
    return box.sent_many([notice_id], by=by, delivered_as=delivered_as) == 1


LATER = (Notice.READY, Notice.STOP_REQUESTED, Notice.STOPPED)


def with_notices(db: Database, n: int, clock: FakeClock) -> int:
    """An island (its announcement queued by the start) with three more notices queued."""
    island_id = start(db, n, clock)
    with db.engine.begin() as conn:
        outbox.add(conn, island_id, [(kind, {"by": "U0X"}) for kind in LATER], at=T0)
    return island_id


def ids_of(db: Database, island_id: int) -> list[int]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(OutboxMessage.id)
                .where(OutboxMessage.island_id == island_id)
                .order_by(OutboxMessage.id)
            ).scalars()
        )


def test_pending_reads_only_due_notices_so_stuck_ones_never_starve_newer_ones(
    db: Database,
) -> None:
    clock = FakeClock(T0)
    stuck, other = with_notices(db, 1, clock), with_notices(db, 2, clock)
    box = Outbox(db)
    head = ids_of(db, stuck)[0]
    assert claim(box, head, by="d", ttl=timedelta(seconds=20), fence=None)
    assert not box.failed(
        head, by="d", error="503", wait=timedelta(hours=1), max_age=timedelta(days=36500)
    )
    # the stuck island's four notices come first by id: read as due, they would fill the
    # batch and keep the other island's out; its later ones wait behind its backing-off head
    _now, pending = box.pending(limit=4)
    assert [n.id for n in pending] == ids_of(db, other)
    assert box.unsent() == 8  # still undelivered, none given up


def test_a_notice_never_to_be_delivered_is_recorded_at_once_and_its_island_goes_on(
    db: Database,
) -> None:
    clock = FakeClock(T0)
    island_id = with_notices(db, 1, clock)
    box = Outbox(db)
    announce, ready, *rest = ids_of(db, island_id)
    ttl = timedelta(seconds=20)
    assert claim(box, announce, by="d", ttl=ttl, fence=None)
    assert sent(box, announce, by="d")
    assert claim(box, ready, by="d", ttl=ttl, fence=None)
    assert not box.refused(ready, by="someone else", outcome="refused", error="msg_too_long")
    assert box.refused(ready, by="d", outcome="refused", error="chat.postMessage: msg_too_long")
    assert not claim(box, ready, by="d", ttl=ttl, fence=None)  # done with, for good
    _now, pending = box.pending(limit=10)
    assert [n.id for n in pending] == rest  # the island's next notice is due now
    assert claim(box, rest[0], by="d", ttl=ttl, fence=None)
    assert box.refused(rest[0], by="d", outcome="failed", error="TypeError: a bug")
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage).where(OutboxMessage.id.in_([ready, rest[0]]))
        ).all()
    outcomes = sorted((r.delivered_as, r.last_error, r.sent_at, r.claimed_by) for r in rows)
    assert outcomes == [
        ("failed", "TypeError: a bug", None, None),
        ("refused", "chat.postMessage: msg_too_long", None, None),
    ]
    assert all(r.given_up_at is not None for r in rows)
    assert box.unsent() == 1
